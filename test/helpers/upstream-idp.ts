import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import Provider, { type Adapter, type AdapterPayload } from 'oidc-provider';

/** Keeps the upstream's state in memory, per test (and keeps the engine's start-up warnings quiet). */
function memoryAdapter() {
  const store = new Map<string, AdapterPayload>();
  return class implements Adapter {
    name: string;
    constructor(name: string) { this.name = name; }
    async upsert(id: string, payload: AdapterPayload) { store.set(`${this.name}:${id}`, payload); }
    async find(id: string) { return store.get(`${this.name}:${id}`); }
    async findByUserCode() { return undefined; }
    async findByUid(uid: string) { return [...store.entries()].find(([k, v]) => k.startsWith(`${this.name}:`) && v.uid === uid)?.[1]; }
    async consume(id: string) { const p = store.get(`${this.name}:${id}`); if (p) p.consumed = Math.floor(Date.now() / 1000); }
    async destroy(id: string) { store.delete(`${this.name}:${id}`); }
    async revokeByGrantId(grantId: string) { for (const [k, v] of store) if (v.grantId === grantId) store.delete(k); }
  };
}

export interface UpstreamUser {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  /** RFC 8176 methods the upstream reports for the login (its ID token's `amr`). */
  amr?: string[];
}

/**
 * A stand-in for Google: a second, real oidc-provider on 127.0.0.1. Its login "page" signs in
 * whoever the test set with `signInAs` and grants what was asked, so a test drives the real
 * authorization code flow (PKCE, state, nonce, signed ID token) without a form.
 *
 * `listen()` first (the port is needed in Lanyard's configuration), then `configure()` with
 * Lanyard's redirect URI.
 */
export async function startUpstreamIdp(options: { host?: string; clientId?: string; idTokenClaims?: boolean; userinfoOnly?: Record<string, unknown> } = {}) {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // A browser keeps cookies per host, not per port: with both servers at 127.0.0.1 the two
  // engines' session cookies (same names) would overwrite each other. Browser tests name the
  // upstream `localhost` (still listening on 127.0.0.1 only).
  const issuer = `http://${options.host ?? '127.0.0.1'}:${(server.address() as AddressInfo).port}`;
  const clientId = options.clientId ?? 'lanyard-at-google';
  const clientSecret = 'upstream-client-secret-0123456789';
  let current: UpstreamUser | undefined;
  const users = new Map<string, UpstreamUser>();
  /** Seconds to backdate the next login's auth_time by: an upstream answering from an old session. */
  let staleBy = 0;
  /** The authorization requests received (their query parameters), oldest first. */
  const requests: URLSearchParams[] = [];
  /** How many userinfo requests the upstream answered. */
  let userinfoRequests = 0;

  return {
    issuer,
    clientId,
    clientSecret,
    signInAs(user: UpstreamUser) {
      current = user;
      users.set(user.sub, user);
    },
    configure(redirectUri: string) {
      const provider = new Provider(issuer, {
        adapter: memoryAdapter(),
        jwks: { keys: [{ ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), kid: 'upstream', alg: 'RS256', use: 'sig' }] as never },
        ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 600, Grant: 600 },
        clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: [redirectUri], grant_types: ['authorization_code'], response_types: ['code'] }],
        claims: { openid: ['sub', 'amr', ...Object.keys(options.userinfoOnly ?? {}).filter((k) => !['email', 'email_verified', 'name'].includes(k))], email: ['email', 'email_verified'], profile: ['name'] },
        pkce: { required: () => true },
        features: { devInteractions: { enabled: false } },
        // `idTokenClaims`: the ID token carries the address itself, so the relying party has no
        // reason to ask userinfo (OIDC Core §5.4 lets a provider put the claims in either).
        ...(options.idTokenClaims ? { conformIdTokenClaims: false } : {}),
        cookies: { keys: ['upstream-test-cookie-key'] },
        async findAccount(_ctx, sub) {
          const user = users.get(sub);
          if (!user) return undefined;
          const { amr: _amr, ...claims } = user;
          // `userinfoOnly`: claims the userinfo endpoint says and the ID token does not (a
          // provider whose unsigned answer contradicts its signed one).
          return { accountId: sub, claims: async (use: string) => ({ ...claims, ...(use === 'userinfo' ? options.userinfoOnly : {}) }) };
        },
        interactions: { url: (_ctx, interaction) => `/login/${interaction.uid}` },
      });
      provider.use(async (ctx, next) => {
        if (ctx.path === '/auth') requests.push(new URLSearchParams(ctx.querystring));
        if (ctx.path === '/me') userinfoRequests += 1;
        const match = /^\/login\/([^/]+)$/.exec(ctx.path);
        if (!match) return next();
        const details = await provider.interactionDetails(ctx.req, ctx.res);
        if (!current) {
          await provider.interactionFinished(ctx.req, ctx.res, { error: 'access_denied' }, { mergeWithLastSubmission: false });
          return;
        }
        const grant = new provider.Grant({ accountId: current.sub, clientId: String(details.params.client_id) });
        grant.addOIDCScope(String(details.params.scope));
        const ts = staleBy ? Math.floor(Date.now() / 1000) - staleBy : undefined;
        staleBy = 0;
        await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: current.sub, ...(ts ? { ts } : {}), ...(current.amr ? { amr: current.amr } : {}) }, consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: false });
      });
      server.on('request', provider.callback());
    },
    /**
     * The next login reports an old sign-in (auth_time `seconds` ago), as Google does when it
     * answers from its own session whatever max_age asked for.
     */
    staleNext(seconds: number) {
      staleBy = seconds;
    },
    requests,
    get userinfoRequests() {
      return userinfoRequests;
    },
    /** The next login is refused, as when the person cancels at Google. */
    cancelNext() {
      current = undefined;
    },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
