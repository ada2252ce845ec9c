import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import Provider, { type Adapter, type AdapterPayload, type ClientMetadata } from 'oidc-provider';
import * as argon2 from 'argon2';
import type { Database } from '../src/persistence/db.ts';
import { SCOPE_CLAIMS } from '../src/identity/claims-release.ts';
import type { BenchClients } from './lanyard.ts';

export interface BaselineServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Pieces of Lanyard swapped into the baseline one at a time by bench/decompose.ts, to see what
 * each costs. `npm run bench` uses none of them.
 */
export interface LanyardParts {
  /** A storage adapter instead of the baseline's (Lanyard's: src/oidc/adapter.ts). */
  adapter?: (model: string) => Adapter;
  /** Clients read through this lookup instead of static clients (Lanyard's ClientService). */
  findClient?: (clientId: string) => Promise<ClientMetadata | undefined>;
  /** An account lookup made wherever the engine asks for the account; undefined refuses it. */
  findAccount?: (accountId: string) => Promise<unknown>;
  /** The account the interaction route signs in (an id that findAccount knows). */
  accountId?: string;
}

/**
 * The fair login baseline (issue 14): with a password hash, the interaction route shows a
 * password form and verifies what is posted against that argon2id hash (the same parameters
 * as Lanyard's, so the same cost) before finishing the interaction — what a bare oidc-provider
 * with a password login does, and nothing more. Without it, the route signs in at once.
 */
export interface BaselineOptions {
  passwordHash?: string;
}

/**
 * The baseline: bare oidc-provider, configured the way its documentation shows, with the same
 * protocol profile as Lanyard where it matters to the measured endpoints — ES256 signing, PKCE
 * required, refresh-token rotation, Lanyard's default lifetimes — and nothing else: static
 * clients, a constant account, no middleware, served by `http.createServer(provider.callback())`.
 */
export async function startBaseline(db: Database, clients: BenchClients, parts: LanyardParts = {}, options: BaselineOptions = {}): Promise<BaselineServer> {
  // The storage of oidc-provider's example adapters: the payload as JSON keyed by (model, id),
  // plus the three lookup keys the Adapter interface needs (grantId, uid, userCode) and expiry.
  await db.exec(`
    CREATE TABLE IF NOT EXISTS bench_baseline_oidc (
      model text NOT NULL,
      id text NOT NULL,
      payload jsonb NOT NULL,
      grant_id text,
      uid text,
      user_code text,
      expires_at timestamptz,
      consumed_at timestamptz,
      PRIMARY KEY (model, id));
    CREATE INDEX IF NOT EXISTS bench_baseline_oidc_grant ON bench_baseline_oidc (grant_id);
    CREATE INDEX IF NOT EXISTS bench_baseline_oidc_uid ON bench_baseline_oidc (uid);
    CREATE INDEX IF NOT EXISTS bench_baseline_oidc_user_code ON bench_baseline_oidc (user_code);`);

  const live = '(expires_at IS NULL OR expires_at > now())';
  const restore = (row: { payload: AdapterPayload; consumed_at: Date | null } | undefined): AdapterPayload | undefined =>
    row ? { ...row.payload, ...(row.consumed_at ? { consumed: Math.floor(row.consumed_at.getTime() / 1000) } : {}) } : undefined;

  class BaselineAdapter implements Adapter {
    readonly model: string;

    constructor(model: string) {
      this.model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      await db.query(
        `INSERT INTO bench_baseline_oidc (model, id, payload, grant_id, uid, user_code, expires_at)
         VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7)
         ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id,
           uid = excluded.uid, user_code = excluded.user_code, expires_at = excluded.expires_at`,
        [this.model, id, JSON.stringify(payload), payload.grantId ?? null, payload.uid ?? null, payload.userCode ?? null,
          expiresIn ? new Date(Date.now() + expiresIn * 1000) : null],
      );
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      const { rows } = await db.query<{ payload: AdapterPayload; consumed_at: Date | null }>(
        `SELECT payload, consumed_at FROM bench_baseline_oidc WHERE model = $1 AND id = $2 AND ${live}`, [this.model, id]);
      return restore(rows[0]);
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const { rows } = await db.query<{ payload: AdapterPayload; consumed_at: Date | null }>(
        `SELECT payload, consumed_at FROM bench_baseline_oidc WHERE model = $1 AND uid = $2 AND ${live}`, [this.model, uid]);
      return restore(rows[0]);
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      const { rows } = await db.query<{ payload: AdapterPayload; consumed_at: Date | null }>(
        `SELECT payload, consumed_at FROM bench_baseline_oidc WHERE model = $1 AND user_code = $2 AND ${live}`, [this.model, userCode]);
      return restore(rows[0]);
    }

    async consume(id: string): Promise<void> {
      await db.query('UPDATE bench_baseline_oidc SET consumed_at = now() WHERE model = $1 AND id = $2', [this.model, id]);
    }

    async destroy(id: string): Promise<void> {
      await db.query('DELETE FROM bench_baseline_oidc WHERE model = $1 AND id = $2', [this.model, id]);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await db.query('DELETE FROM bench_baseline_oidc WHERE model = $1 AND grant_id = $2', [this.model, grantId]);
    }
  }

  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const es256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

  const { findClient, findAccount } = parts;
  class ClientLookup implements Adapter {
    find(id: string) { return findClient!(id) as Promise<AdapterPayload | undefined>; }
    async upsert() {}
    async findByUid() { return undefined; }
    async findByUserCode() { return undefined; }
    async consume() {}
    async destroy() {}
    async revokeByGrantId() {}
  }

  const provider = new Provider(url, {
    adapter: (name: string) => (name === 'Client' && findClient ? new ClientLookup() : parts.adapter?.(name) ?? new BaselineAdapter(name)),
    clients: findClient ? [] : [
      { client_id: clients.service.id, client_secret: clients.service.secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
      { client_id: clients.web.id, client_secret: clients.web.secret, grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], redirect_uris: [clients.web.redirectUri] },
    ],
    jwks: { keys: [{ ...es256, alg: 'ES256', use: 'sig', kid: 'bench-baseline' }] } as never,
    cookies: { keys: ['bench-baseline-cookie-key-0123456789'] },
    clientDefaults: { grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: 'ES256' },
    // Introspection for authenticated clients and userinfo, as Lanyard has them (userinfo is on by
    // default); the claims per scope are Lanyard's table, with ID tokens carrying them too.
    features: { devInteractions: { enabled: false }, clientCredentials: { enabled: true }, introspection: { enabled: true, allowedPolicy: (_ctx, client) => client.clientAuthMethod !== 'none' }, userinfo: { enabled: true } },
    claims: Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([scope, claims]) => [scope, scope === 'openid' ? [...claims, 'acr', 'auth_time'] : [...claims]])),
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    async findAccount(_ctx, sub) {
      if (findAccount && !(await findAccount(sub))) return undefined;
      return { accountId: sub, claims: async () => ({ sub, email: 'bench@example.com', email_verified: true, name: 'Bench', picture: `${url}/avatars/${sub}`, updated_at: Math.floor(Date.now() / 1000) }) };
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // Like Lanyard's first-party clients: the grant covers what is asked, no consent prompt.
    async loadExistingGrant(ctx) {
      const { client, session } = ctx.oidc;
      const grantId = session!.grantIdFor(client!.clientId);
      const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      if (existing) return existing;
      const grant = new ctx.oidc.provider.Grant({ clientId: client!.clientId, accountId: session!.accountId! });
      grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
      await grant.save();
      return grant;
    },
    // Lanyard's default lifetimes (config/default.json).
    ttl: { AccessToken: 3600, AuthorizationCode: 60, ClientCredentials: 3600, IdToken: 3600, RefreshToken: 1209600, Session: 1209600, Interaction: 3600, Grant: 1209600 },
  });

  // The one interaction route: signs the fixed benchmark account in — at once, or (with a
  // password hash) after a password form whose submission is verified with argon2id.
  const { passwordHash } = options;
  provider.use(async (ctx, next) => {
    if (!ctx.path.startsWith('/interaction/')) return next();
    if (passwordHash) {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      if (ctx.method === 'GET') {
        ctx.type = 'html';
        ctx.body = `<!doctype html><title>Log in</title><form method="post" action="/interaction/${details.uid}/login"><input name="email"><input type="password" name="password"><button>Log in</button></form>`;
        return;
      }
      let raw = '';
      for await (const chunk of ctx.req) raw += String(chunk);
      const password = new URLSearchParams(raw).get('password') ?? '';
      if (!(await argon2.verify(passwordHash, password))) {
        ctx.status = 401;
        ctx.body = 'email and password do not match';
        return;
      }
    }
    await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: parts.accountId ?? 'bench-account' } });
    ctx.respond = false; // interactionFinished answered (303 to the authorization endpoint)
  });
  server.on('request', provider.callback());

  return {
    url,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
