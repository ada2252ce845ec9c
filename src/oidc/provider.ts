import Provider, { type Adapter, type ClientMetadata, type Configuration, type KoaContextWithOIDC, type ErrorOut, type Account } from 'oidc-provider';
import type { JWK } from 'jose';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../shared/logger.ts';
import type { AccountRow } from '../persistence/queries/accounts.ts';
import { API_SCOPES, MANAGE_ORGANIZATIONS_SCOPE, SCOPE_CLAIMS, type ClaimsRelease } from '../identity/claims-release.ts';
import { ACR_VALUES, type AccountSubject, type Decision, type DecisionInput } from '../policy/policy.ts';
import { protocolErrors, TemporarilyUnavailable, withProtocolErrors } from './unavailable.ts';
import { accessTokenProvenance, loginPolicy, stageFor, tokenProvenance } from './provenance.ts';
import { UNAVAILABLE_RETRY_AFTER_SECONDS } from '../shared/errors.ts';
import { reuseBuiltClients } from './built-clients.ts';

/**
 * Builds the oidc-provider instance. This module and its siblings in src/oidc are the only
 * importers of oidc-provider; everything is customised through its documented configuration
 * hooks (convention 8). Protocol choices and their reasons: docs/decisions/0002-protocol-profile.md.
 */

/** Custom client metadata that marks our own products: no consent screen for them. */
export const FIRST_PARTY = 'lanyard_first_party';

/** The engine's types the pages below receive, so that their implementation (src/flows/logout/pages.ts) need not import the engine. */
export type { KoaContextWithOIDC, ErrorOut };

export interface ProviderPages {
  /** The page for a protocol error that cannot go back to the client (renderError). */
  error(ctx: KoaContextWithOIDC, out: ErrorOut): string;
  /** "Do you want to sign out?" with the engine's form (RP-initiated logout). */
  logoutConfirm(ctx: KoaContextWithOIDC, form: string): string;
  /** After sign-out when no post_logout_redirect_uri applies. */
  logoutDone(ctx: KoaContextWithOIDC): string;
}

export interface ProviderDeps {
  config: Config;
  logger: Logger;
  jwks: { keys: JWK[] };
  cookieKeys: string[];
  adapter: new (model: string) => Adapter;
  /** A client's metadata: the same object for as long as the client is unchanged (its instance is reused, src/oidc/built-clients.ts). */
  findClient: (clientId: string) => Promise<ClientMetadata | undefined>;
  /** The account and its policy subject for the token stages, in one statement (`policy.loadForTokens`). */
  findAccount: (id: string) => Promise<{ account: AccountRow; subject: AccountSubject } | undefined>;
  /** The decision point (`policy.decide`): refresh, userinfo, introspection and a reused session ask it. */
  decide: (input: Omit<DecisionInput, 'now'>) => Decision;
  /** When a browser session was last used (seconds since the epoch), for a policy's idle timeout. */
  sessionLastUsed?: (sessionUid: string) => Promise<number | undefined>;
  /** What a client receives about the account: the same function the consent page lists from. */
  release: ClaimsRelease;
  pages: ProviderPages;
}

/** Custom metadata keeps its registered (snake_case) name on the engine's Client instances. */
export function isFirstParty(client: object | undefined): boolean {
  return (client as Record<string, unknown> | undefined)?.[FIRST_PARTY] === true;
}

export function createProvider(deps: ProviderDeps): Provider {
  const { config, logger, pages } = deps;
  // The subject findAccount loaded for the Account it returned: the login prompt's check reads it
  // back for the same request instead of querying again.
  const subjects = new WeakMap<object, AccountSubject>();
  const logFor = (ctx: unknown) => ((ctx as { state?: { log?: Logger } } | undefined)?.state?.log ?? logger);

  // Clients live in the database (managed by the CLI); the engine reads them through the
  // "Client" model adapter and caches the validated instance per metadata hash.
  class ClientAdapter implements Adapter {
    async find(id: string) { return deps.findClient(id) as Promise<never>; }
    async upsert() { throw new Error('clients are managed by the CLI'); }
    async findByUid() { return undefined; }
    async findByUserCode() { return undefined; }
    async destroy() { throw new Error('clients are managed by the CLI'); }
    async consume() { throw new Error('clients are managed by the CLI'); }
    async revokeByGrantId() {}
  }

  const configuration: Configuration = {
    adapter: (name: string) => withProtocolErrors(name === 'Client' ? new ClientAdapter() : new deps.adapter(name)),
    clients: [],
    jwks: deps.jwks as Configuration['jwks'],
    cookies: {
      keys: deps.cookieKeys,
      // With an https issuer every cookie is Secure (the origin is pinned to ISSUER), and the
      // session cookie, set on path /, is `__Host-` prefixed so no sibling host can plant or
      // shadow it (RFC 6265bis §4.1.3.2); the interaction cookies live on deeper paths.
      ...(new URL(config.issuer).protocol === 'https:'
        ? { names: { session: '__Host-session', interaction: '__Secure-interaction', resume: '__Secure-interaction_resume' } }
        : {}),
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    // ES256 by default (cheaper to sign than RS256); a client may ask for RS256 in its metadata.
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    },
    extraClientMetadata: {
      properties: [FIRST_PARTY],
      validator(_ctx, key, value) {
        if (key === FIRST_PARTY && value !== undefined && typeof value !== 'boolean') {
          throw new Error(`${FIRST_PARTY} must be a boolean`);
        }
      },
    },
    // Per scope, from the table the consent page is described from (src/identity/claims-release.ts):
    // amr (RFC 8176) says how the user signed in; trello_member_id, for the Trello client only,
    // maps the login to the same boards; profile adds our fields (job_title … location).
    // The openid scope also puts acr (the level reached) and auth_time in every ID token (OIDC Core §2).
    claims: Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([scope, claims]) => [scope, scope === 'openid' ? [...claims, 'acr', 'auth_time'] : [...claims]])),
    // The ID token carries the granted scopes' claims too, not only userinfo: relying parties (and
    // our README's example) read `email` from the ID token, and OIDC Core §5.4 allows both
    // (docs/decisions/0021-consent-releases-what-it-lists.md).
    conformIdTokenClaims: false,
    // Scopes the engine accepts besides those of `claims`: offline_access (OIDC Core §11), and
    // the scopes of our own APIs, which release no claims and are checked by those APIs on the
    // access token (organizations:manage, docs/decisions/0032-management-api-authorization.md).
    // Unlisted scopes are dropped from requests by the engine, so this is what makes them grantable.
    scopes: ['openid', 'offline_access', ...API_SCOPES],
    /**
     * The account behind a session or token. Using a grant (refresh token, authorization code)
     * or an access token (userinfo) asks the decision point whether how the grant was made still
     * meets what the account requires now: when the policy tightened (two-step became required)
     * or the account was deactivated, the engine answers invalid_grant or invalid_token. One
     * statement loads the row and its policy columns (docs/decisions/0025-session-provenance-and-levels.md).
     */
    async findAccount(ctx, sub, token): Promise<Account | undefined> {
      const loaded = await protocolErrors(() => deps.findAccount(sub));
      if (!loaded) return undefined;
      const { account, subject } = loaded;
      const stage = stageFor(token);
      if (stage) {
        const decision = deps.decide({ stage, subject, provenance: tokenProvenance(token!) });
        if (decision.outcome !== 'allow') {
          logFor(ctx).info({ accountId: sub, stage, outcome: decision.outcome, reason: 'reason' in decision ? decision.reason : undefined }, 'policy refused the token');
          return undefined;
        }
      // At /auth: a deactivated or closed account's session no longer signs anyone in; whether
      // the session's provenance still suffices is the login prompt's check (provenance.ts).
      } else if (account.status !== 'active') return undefined;
      const clientId = ctx.oidc?.client?.clientId;
      const found: Account = {
        accountId: sub,
        // Exactly what the grant covers (docs/decisions/0010-profile-visibility.md, "Revised"):
        // the consent page listed these details from the same function.
        claims: async (_use, scope, claims, rejected) => {
          const released = await protocolErrors(() => deps.release.claimsForClient(account, clientId, { scopes: (scope ?? '').split(' '), claims: Object.keys(claims ?? {}), rejected }));
          return { sub, ...released } as never;
        },
      };
      subjects.set(found, subject);
      return found;
    },
    // The engine's provenance (acr, amr, auth_time) rides on each access token, in its own row.
    extraTokenClaims: (ctx, token) => accessTokenProvenance(ctx, token),
    // Assurance levels (src/policy/levels.ts): advertised in discovery, accepted in acr_values.
    acrValues: [...ACR_VALUES],
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
      // The engine's prompts, and a login check of ours: a reused session must still meet the
      // account's policy and the level asked for (src/oidc/provenance.ts).
      policy: loginPolicy({
        decide: deps.decide,
        subjectOf: (ctx) => (ctx.oidc.account ? subjects.get(ctx.oidc.account) : undefined),
        ...(deps.sessionLastUsed ? { sessionLastUsed: deps.sessionLastUsed } : {}),
      }),
    },
    /**
     * First-party products need no consent screen: their grant is created, or extended with
     * newly requested scopes and claims, here. Third-party clients keep the grant the user gave.
     */
    async loadExistingGrant(ctx) {
      const { client, session, result } = ctx.oidc;
      if (!client || !session?.accountId) return undefined;
      const grantId = (result?.consent as { grantId?: string } | undefined)?.grantId ?? session.grantIdFor(client.clientId);
      const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      if (!isFirstParty(client)) return existing;
      const grant = existing ?? new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      const granted = new Set((grant.getOIDCScope() ?? '').split(' '));
      // Acting as an organization's admin is never granted silently, not even to our own
      // products: the consent page names it (decision 0032), so it is left for consent to add.
      const scopes = [...ctx.oidc.requestParamOIDCScopes].filter((s) => s !== MANAGE_ORGANIZATIONS_SCOPE || granted.has(s));
      const claims = [...ctx.oidc.requestParamClaims];
      const grantedClaims = new Set(grant.getOIDCClaims?.() ?? []);
      if (!existing || scopes.some((s) => !granted.has(s)) || claims.some((c) => !grantedClaims.has(c))) {
        grant.addOIDCScope(scopes.join(' '));
        if (claims.length) grant.addOIDCClaims(claims);
        await grant.save();
      }
      return grant;
    },
    // Authorization code only: no implicit or hybrid responses (RFC 9700 §2.1.2).
    responseTypes: ['code', 'none'],
    // What a client can be registered with (src/oidc/clients.ts): a shared secret, or none for a
    // public client. The engine takes a secret in the body as readily as in the header (both are
    // the same secret; OIDC Core §9), so both are advertised; the JWT methods, which need keys a
    // client cannot register here, are not (discovery lists only what works).
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
    // redirect_uri is required at /auth (OIDC Core §3.1.2.1) and again at /token, identical
    // (RFC 6749 §4.1.3), even for a client with one registered URI: the engine's default fills in
    // that one when it is missing, which let a token request leave out what the authorization sent.
    allowOmittingSingleRegisteredRedirectUri: false,
    // PKCE (RFC 7636) with S256 for every authorization code flow, as OAuth 2.0 Security BCP
    // (RFC 9700 §2.1.1) recommends, confidential clients included.
    pkce: { required: () => true },
    // Every refresh rotates the token; presenting a rotated one revokes the whole grant (RFC 9700 §4.14.2).
    rotateRefreshToken: true,
    /**
     * offline_access (OIDC Core §11) yields a refresh token that outlives the session; the engine
     * honours it only with prompt=consent. First-party clients also get a refresh token without
     * it, bound to the session: it dies at sign-out.
     */
    async issueRefreshToken(_ctx, client, code) {
      return client.grantTypeAllowed('refresh_token') && (code.scopes.has('offline_access') || isFirstParty(client));
    },
    ttl: {
      AccessToken: config.ttl.accessToken,
      AuthorizationCode: config.ttl.authorizationCode,
      ClientCredentials: config.ttl.accessToken,
      IdToken: config.ttl.idToken,
      RefreshToken: config.ttl.refreshToken,
      Session: config.ttl.session,
      Interaction: config.ttl.interaction,
      Grant: config.ttl.grant,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // RFC 7662 §2.1: only authenticated (confidential) clients may introspect, and §4: the
        // caller must be authorised for the token. A client learns about the tokens issued to
        // itself; our own products' servers (first-party clients: the resource servers a mobile
        // app's token is sent to) about any token; another company's application about none but
        // its own — to anyone else a token is `active: false`, as an unknown one. A token whose
        // grant no longer meets the account's policy is reported inactive (§2.2), as userinfo
        // and our APIs refuse it.
        allowedPolicy: async (_ctx, client, token) => {
          if (client.clientAuthMethod === 'none') return false;
          if (token.clientId !== client.clientId && !isFirstParty(client)) return false;
          const accountId = 'accountId' in token ? token.accountId : undefined;
          if (!accountId) return true;
          const loaded = await protocolErrors(() => deps.findAccount(accountId));
          if (!loaded) return false;
          const stage = token.kind === 'AccessToken' ? 'api' : 'refresh';
          return deps.decide({ stage, subject: loaded.subject, provenance: tokenProvenance(token) }).outcome === 'allow';
        },
      },
      revocation: {
        enabled: true,
        // RFC 7009 §2.1: a client may revoke only tokens that were issued to it.
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => {
          ctx.type = 'html';
          ctx.body = pages.logoutConfirm(ctx, form);
        },
        postLogoutSuccessSource: (ctx) => {
          ctx.type = 'html';
          ctx.body = pages.logoutDone(ctx);
        },
      },
      userinfo: { enabled: true },
    },
    ...(config.allowPrivateNetworkCalls
      ? {
          // Drop the engine's SSRF-checking dispatcher so loopback/private relying parties are reachable.
          fetch: (url: string | URL | Request, options?: RequestInit) => {
            const { dispatcher: _dispatcher, ...rest } = (options ?? {}) as RequestInit & { dispatcher?: unknown };
            return globalThis.fetch(url, rest);
          },
        }
      : {}),
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = pages.error(ctx, out);
    },
  };

  const provider = new Provider(config.issuer, configuration);
  // Proxy trust and the origin (ISSUER) are set by the app for both Koa applications (src/app.ts).
  // Without a client cache every lookup is a new object: nothing to reuse, and the wrapper's own
  // read would only double the engine's (decision 0066).
  if (config.clientCacheSeconds > 0) reuseBuiltClients(provider);

  // A 503 tells the client when to come back (RFC 9110 §10.2.3); docs/reliability.md.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.status === 503) ctx.set('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
  });
  provider.on('server_error', (ctx, err) => logFor(ctx).error({ err }, 'oidc server error'));
  provider.on('grant.revoked', (ctx, grantId) => logFor(ctx).info({ grantId }, 'grant revoked'));
  provider.on('backchannel.error', (ctx, err, client) => logFor(ctx).warn({ err: { message: err.message }, clientId: client.clientId }, 'back-channel logout failed'));
  provider.on('backchannel.success', (ctx, client) => logFor(ctx).info({ clientId: client.clientId }, 'back-channel logout delivered'));
  for (const event of ['authorization.error', 'grant.error', 'introspection.error', 'revocation.error', 'userinfo.error', 'end_session.error'] as const) {
    (provider as unknown as NodeJS.EventEmitter).on(event, (ctx: unknown, err: Error & { error_description?: string; error_detail?: string }) => {
      if (err instanceof TemporarilyUnavailable) logFor(ctx).warn({ event, reason: err.error_detail }, 'service unavailable');
      else logFor(ctx).info({ event, error: err.message, description: err.error_description }, 'oidc request refused');
    });
  }
  return provider;
}
