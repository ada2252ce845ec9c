import type * as OpenidClient from 'openid-client';
import type { UpstreamFetch } from './upstream-fetch.ts';

/**
 * The relying-party half of a login at an upstream OpenID provider (openid-client; OpenID Connect
 * Core 1.0 §3.1, authorization code with PKCE, state and nonce), shared by "Continue with Google"
 * (google.ts) and a company's OIDC connector (connector-protocol.ts). openid-client checks the
 * `state`, the `iss` of the authorization response when the provider advertises it (RFC 9207),
 * the PKCE verifier, and the ID token's signature, issuer, audience, expiry and nonce.
 *
 * Discovery runs at first use, again after a failure, and again once a minute old. Plain http is allowed only for an
 * http issuer (tests, development), which the configuration refuses in production.
 */
export interface UpstreamClaims {
  sub: string;
  email: string | undefined;
  /** The upstream's `email_verified`: true, false, or undefined when it says nothing. */
  emailVerified: boolean | undefined;
  name: string | undefined;
  /** When the person last signed in upstream (seconds), when the upstream says. */
  authTime: number | undefined;
  /** The upstream's RFC 8176 methods (`amr`), when it says. */
  amr: string[];
  /** The upstream's `acr`, when it says. */
  acr: string | undefined;
}

export interface UpstreamStart {
  url: string;
  state: string;
  nonce: string;
  verifier: string;
}

export interface UpstreamChecks {
  state: string;
  nonce: string;
  verifier: string;
}

export interface OidcClientSettings {
  issuer: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** Space-separated; `openid` first. */
  scope: string;
  /** Claim names when the upstream uses others than OIDC Core's (`email`, `name`). */
  claims?: { email?: string | undefined; name?: string | undefined } | undefined;
  /** Seconds for each request to the upstream (discovery, token, userinfo). */
  timeoutSeconds?: number;
  /**
   * Whether a re-authentication may also send `prompt=login` (OIDC Core §3.1.2.1). Google refuses
   * it, so its client sends `max_age=0` only.
   */
  promptLogin?: boolean;
  /** The clock (milliseconds) the discovery document's age is measured by; `Date.now` when absent. */
  now?: () => number;
  /**
   * The fetch of every request to the upstream (openid-client's `customFetch`): a company
   * connector's refuses private addresses at connect time (upstream-fetch.ts). Google's is the
   * operator's own setting, and uses the plain fetch.
   */
  fetch?: UpstreamFetch;
}

/** How long a discovery document is used before it is fetched again (milliseconds). */
export const DISCOVERY_TTL_MS = 60_000;

/** openid-client is loaded at the first upstream login: not every deployment has one (decision 0059). */
let openidClient: Promise<typeof OpenidClient> | undefined;
const loadOpenidClient = () => (openidClient ??= import('openid-client'));

export function createOidcClient(settings: OidcClientSettings) {
  let configuration: Promise<OpenidClient.Configuration> | undefined;
  const emailClaim = settings.claims?.email ?? 'email';
  const nameClaim = settings.claims?.name ?? 'name';

  let discoveredAt = 0;

  /**
   * The upstream's discovery document, fetched again once it is DISCOVERY_TTL_MS old: a login
   * that starts sends the browser to the upstream, so an upstream that went down must be noticed
   * here — a failed fetch gives the person a clear page and the console a failing health line —
   * rather than after the browser has left (walkthrough finding: a document kept for good hid an
   * outage). `fresh`: fetch it now (the console's test).
   */
  function config(options: { fresh?: boolean } = {}): Promise<OpenidClient.Configuration> {
    const now = (settings.now ?? Date.now)();
    if (options.fresh || now - discoveredAt > DISCOVERY_TTL_MS) configuration = undefined;
    if (!configuration) discoveredAt = now;
    configuration ??= loadOpenidClient().then((client) => client.discovery(new URL(settings.issuer), settings.clientId, settings.clientSecret, undefined, {
      ...(settings.issuer.startsWith('http:') ? { execute: [client.allowInsecureRequests] } : {}),
      timeout: settings.timeoutSeconds ?? 10,
      ...(settings.fetch ? { [client.customFetch]: settings.fetch as unknown as OpenidClient.CustomFetch } : {}),
    })).catch((err: unknown) => {
      configuration = undefined;
      throw err;
    });
    return configuration;
  }

  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);

  return {
    /**
     * `maxAge` (seconds): 0 when this login re-authenticates someone already signed in here
     * (prompt=login, max_age, a sensitive change in settings), so the upstream's own session must
     * not answer for it; the relying party's max_age when it sent one. `max_age` asks the upstream
     * for a sign-in at most that old and for `auth_time` in the ID token (OIDC Core §3.1.2.1); the
     * caller checks `authTime`. `loginHint`: the address typed at our identifier step.
     */
    async start(options: { maxAge?: number | undefined; loginHint?: string | undefined } = {}): Promise<UpstreamStart> {
      const client = await loadOpenidClient();
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      const url = client.buildAuthorizationUrl(await config(), {
        redirect_uri: settings.redirectUri,
        scope: settings.scope,
        state,
        nonce,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        ...(options.maxAge !== undefined ? { max_age: String(options.maxAge), ...(options.maxAge === 0 && settings.promptLogin ? { prompt: 'login' } : {}) } : {}),
        ...(options.loginHint ? { login_hint: options.loginHint } : {}),
      });
      return { url: url.href, state, nonce, verifier };
    },

    /**
     * Exchanges the code of `callbackUrl` and returns the verified ID token's claims. The
     * address is read from the ID token; userinfo (OIDC Core §5.3) is asked only when the ID token
     * lacks it — one request fewer, and one party fewer to trust for the address — and its `sub`
     * must be the ID token's (openid-client checks it, §5.3.2).
     */
    async finish(callbackUrl: URL, checks: UpstreamChecks): Promise<UpstreamClaims> {
      const configuration = await config();
      const client = await loadOpenidClient();
      const tokens = await client.authorizationCodeGrant(configuration, callbackUrl, {
        pkceCodeVerifier: checks.verifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      });
      const claims: Record<string, unknown> & { sub: string } = { ...tokens.claims()! };
      if (text(claims[emailClaim]) === undefined) {
        // Userinfo is not signed (OIDC Core §5.3.2 asks only that its `sub` match): it may add
        // the address, its `email_verified` and the name the ID token left out, never replace
        // what the signed token says — auth_time, amr and acr come from the ID token alone.
        const userinfo = await client.fetchUserInfo(configuration, tokens.access_token, claims.sub);
        claims[emailClaim] = userinfo[emailClaim];
        claims.email_verified = userinfo.email_verified;
        if (text(claims[nameClaim]) === undefined) claims[nameClaim] = userinfo[nameClaim];
      }
      const verified = claims.email_verified;
      return {
        sub: claims.sub,
        email: text(claims[emailClaim]),
        emailVerified: typeof verified === 'boolean' ? verified : verified === 'true' ? true : verified === 'false' ? false : undefined,
        name: text(claims[nameClaim]),
        authTime: typeof claims.auth_time === 'number' ? claims.auth_time : undefined,
        amr: Array.isArray(claims.amr) ? claims.amr.filter((v): v is string => typeof v === 'string') : [],
        acr: text(claims.acr),
      };
    },

    /** Discovery alone, fetched now: whether the upstream answers (the console's check before a test login). */
    async discover(): Promise<void> {
      await config({ fresh: true });
    },
  };
}

export type OidcClient = ReturnType<typeof createOidcClient>;
