import type { LoginConnector } from './connectors.ts';
import { createOidcClient, type OidcClient } from './oidc-client.ts';
import type { SamlServiceProvider } from './saml/service-provider.ts';
import { createUpstreamFetch, type UpstreamRules } from './upstream-fetch.ts';

/**
 * What a login through a company connector needs of its protocol (docs/flows/sso.md): send the
 * browser upstream, and turn what comes back into who the person is. The login strategy
 * (src/flows/login/connector.ts) dispatches by `connector.kind` to one of these; it knows no
 * protocol, and a protocol knows no account.
 */
export interface ConnectorIdentity {
  /** The upstream's stable identifier of the person (OIDC `sub`, SAML NameID). */
  subject: string;
  email: string | undefined;
  /** The upstream's word on the address: true, false, or undefined when it says nothing. */
  emailVerified: boolean | undefined;
  name: string | undefined;
  /** When the person last proved themselves upstream (seconds), when it says. */
  authTime: number | undefined;
  /** The upstream did more than one factor (OIDC `amr` with mfa/otp, or a multi-factor `acr`). */
  mfa: boolean;
}

/** What must stay bound to the browser between start and finish (sealed in a cookie by the strategy). */
export type PendingChecks = Record<string, string>;

export interface ConnectorResponse {
  /** OIDC: the callback URL as registered, with the query the upstream sent. */
  callbackUrl?: URL;
  /** SAML: the HTTP-POST binding's fields. */
  form?: { SAMLResponse: string; RelayState?: string };
}

export interface ConnectorProtocol {
  /**
   * `maxAge`: the oldest upstream sign-in the login accepts, in seconds — 0 when it
   * re-authenticates someone signed in here (OIDC max_age=0 and prompt=login), the relying
   * party's max_age otherwise (OIDC max_age; OIDC Core §3.1.2.1). SAML has no max_age: any
   * `maxAge` is ForceAuthn. `relayState`: SAML's, at most 80 bytes.
   */
  start(connector: LoginConnector, options: { maxAge?: number | undefined; loginHint?: string | undefined; relayState: string }): Promise<{ redirectUrl: string; pending: PendingChecks }>;
  finish(connector: LoginConnector, response: ConnectorResponse, pending: PendingChecks): Promise<ConnectorIdentity>;
  /** Whether the upstream answers at all, for the console (OIDC discovery; SAML has nothing to ask). */
  reachable?(connector: LoginConnector): Promise<void>;
}

/** acr values that name a multi-factor login (OpenID PAPE 1.0 §4). */
const MULTI_FACTOR_ACR = new Set([
  'http://schemas.openid.net/pape/policies/2007/06/multi-factor',
  'http://schemas.openid.net/pape/policies/2007/06/multi-factor-physical',
]);
/** RFC 8176 values that mean a second factor was used. */
const MULTI_FACTOR_AMR = new Set(['mfa', 'otp', 'hwk', 'sms', 'tel']);

/** Clients kept per connector, at most this many (discovery is cached in each). */
const MAX_CACHED_CLIENTS = 256;

/**
 * The OpenID Connect protocol of company connectors: one client per connector (and per change
 * of its settings: the cache key holds the connector's update time), each with its own discovery,
 * every request through the fetch that refuses private addresses (unless the rules allow them).
 */
export function createOidcProtocol(deps: { redirectUri: (connectorId: string) => string; timeoutSeconds?: number; upstreams: UpstreamRules; now?: () => number }): ConnectorProtocol {
  const clients = new Map<string, OidcClient>();
  // One checked fetch for every connector: the issuer is anyone's choice (upstream-fetch.ts).
  const fetch = createUpstreamFetch(deps.upstreams);

  function clientFor(connector: LoginConnector): OidcClient {
    if (connector.kind !== 'oidc') throw new Error('not an OpenID Connect connector');
    const key = `${connector.id}:${connector.updatedAt}`;
    let found = clients.get(key);
    if (!found) {
      for (const k of clients.keys()) if (k.startsWith(`${connector.id}:`)) clients.delete(k);
      if (clients.size >= MAX_CACHED_CLIENTS) clients.delete(clients.keys().next().value!);
      found = createOidcClient({
        issuer: connector.config.issuer,
        clientId: connector.config.clientId,
        clientSecret: connector.secrets.clientSecret,
        redirectUri: deps.redirectUri(connector.id),
        scope: connector.config.scopes,
        claims: { email: connector.config.emailClaim, name: connector.config.nameClaim },
        promptLogin: true,
        ...(deps.now ? { now: deps.now } : {}),
        fetch,
        ...(deps.timeoutSeconds ? { timeoutSeconds: deps.timeoutSeconds } : {}),
      });
      clients.set(key, found);
    }
    return found;
  }

  return {
    async start(connector, options) {
      const started = await clientFor(connector).start({ maxAge: options.maxAge, loginHint: options.loginHint });
      return { redirectUrl: started.url, pending: { state: started.state, nonce: started.nonce, verifier: started.verifier } };
    },

    async finish(connector, response, pending) {
      if (!response.callbackUrl || !pending.state || !pending.nonce || !pending.verifier) throw new Error('no authorization response');
      const claims = await clientFor(connector).finish(response.callbackUrl, { state: pending.state, nonce: pending.nonce, verifier: pending.verifier });
      return {
        subject: claims.sub,
        email: claims.email,
        emailVerified: claims.emailVerified,
        name: claims.name,
        authTime: claims.authTime,
        mfa: claims.amr.some((v) => MULTI_FACTOR_AMR.has(v)) || (claims.acr !== undefined && MULTI_FACTOR_ACR.has(claims.acr)),
      };
    },

    async reachable(connector) {
      await clientFor(connector).discover();
    },
  };
}

/**
 * The SAML 2.0 protocol of company connectors: the service provider of src/federation/saml/
 * (signed AuthnRequests, validated responses, one-time assertion ids), its request id kept with
 * the browser so `InResponseTo` must name the request this browser made.
 */
export function createSamlProtocol(sp: Pick<SamlServiceProvider, 'start' | 'finish'>): ConnectorProtocol {
  return {
    async start(connector, options) {
      if (connector.kind !== 'saml') throw new Error('not a SAML connector');
      const started = await sp.start(connector, { fresh: options.maxAge !== undefined, relayState: options.relayState });
      return { redirectUrl: started.redirectUrl, pending: { requestId: started.requestId } };
    },

    async finish(connector, response, pending) {
      if (connector.kind !== 'saml') throw new Error('not a SAML connector');
      if (!response.form) throw new Error('no SAML response');
      const claims = await sp.finish(connector, response.form, pending.requestId ? { requestId: pending.requestId } : {});
      return {
        subject: claims.subject,
        email: claims.email,
        emailVerified: claims.emailVerified,
        name: claims.name,
        authTime: claims.authTime,
        mfa: false,
      };
    },
  };
}
