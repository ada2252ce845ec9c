import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import Provider, { type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Database } from '../src/persistence/db.ts';

/**
 * The baseline: bare oidc-provider with static clients and a plain PostgreSQL adapter of the kind
 * its documentation shows (payload as jsonb keyed by model and id, no hashing, no cache), on the
 * same database engine instance as Lanyard in the same run.
 */
export async function startBaseline(db: Database, clients: { service: { id: string; secret: string }; web: { id: string; secret: string; redirectUri: string } }) {
  await db.query(`CREATE TABLE IF NOT EXISTS bench_oidc (
    model text NOT NULL, id text NOT NULL, payload jsonb NOT NULL, grant_id text, uid text, expires_at timestamptz, consumed_at timestamptz,
    PRIMARY KEY (model, id))`);
  await db.query('CREATE INDEX IF NOT EXISTS bench_oidc__grant ON bench_oidc (grant_id)');
  await db.query('CREATE INDEX IF NOT EXISTS bench_oidc__uid ON bench_oidc (uid)');

  class BaselineAdapter implements Adapter {
    readonly model: string;
    constructor(model: string) { this.model = model; }
    async upsert(id: string, payload: AdapterPayload, expiresIn: number) {
      await db.query(
        `INSERT INTO bench_oidc (model, id, payload, grant_id, uid, expires_at) VALUES ($1, $2, $3::jsonb, $4, $5, $6)
         ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid, expires_at = excluded.expires_at`,
        [this.model, id, JSON.stringify(payload), payload.grantId ?? null, payload.uid ?? null, expiresIn ? new Date(Date.now() + expiresIn * 1000) : null],
      );
    }
    async find(id: string) {
      const { rows } = await db.query<{ payload: AdapterPayload; consumed_at: Date | null }>(
        'SELECT payload, consumed_at FROM bench_oidc WHERE model = $1 AND id = $2 AND (expires_at IS NULL OR expires_at > now())', [this.model, id]);
      const row = rows[0];
      return row ? { ...row.payload, ...(row.consumed_at ? { consumed: Math.floor(row.consumed_at.getTime() / 1000) } : {}) } : undefined;
    }
    async findByUid(uid: string) {
      const { rows } = await db.query<{ payload: AdapterPayload }>('SELECT payload FROM bench_oidc WHERE model = $1 AND uid = $2', [this.model, uid]);
      return rows[0]?.payload;
    }
    async findByUserCode() { return undefined; }
    async consume(id: string) { await db.query('UPDATE bench_oidc SET consumed_at = now() WHERE model = $1 AND id = $2', [this.model, id]); }
    async destroy(id: string) { await db.query('DELETE FROM bench_oidc WHERE model = $1 AND id = $2', [this.model, id]); }
    async revokeByGrantId(grantId: string) { await db.query('DELETE FROM bench_oidc WHERE model = $1 AND grant_id = $2', [this.model, grantId]); }
  }

  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const es256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const provider = new Provider(url, {
    adapter: (name: string) => new BaselineAdapter(name),
    clients: [
      { client_id: clients.service.id, client_secret: clients.service.secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
      { client_id: clients.web.id, client_secret: clients.web.secret, grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [clients.web.redirectUri], id_token_signed_response_alg: 'ES256' },
    ],
    jwks: { keys: [{ ...es256, alg: 'ES256', use: 'sig', kid: 'bench' }] } as never,
    cookies: { keys: ['baseline-cookie-key-baseline-cookie-key'] },
    clientDefaults: { grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: 'ES256' },
    features: { devInteractions: { enabled: false }, clientCredentials: { enabled: true } },
    pkce: { required: () => true },
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // Like a first-party client: the grant covers whatever is asked, no consent page.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
      const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      if (existing) return existing;
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
      grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
      await grant.save();
      return grant;
    },
    // The same lifetimes as Lanyard's defaults.
    ttl: { AccessToken: 3600, AuthorizationCode: 60, ClientCredentials: 3600, IdToken: 3600, RefreshToken: 1209600, Session: 1209600, Interaction: 3600, Grant: 1209600 },
  });
  // The only interaction: log the fixed benchmark account in, without a password.
  provider.use(async (ctx, next) => {
    if (ctx.path.startsWith('/interaction/')) {
      const url = await provider.interactionResult(ctx.req, ctx.res, { login: { accountId: 'bench-account' } });
      ctx.status = 303;
      ctx.redirect(url);
      return;
    }
    await next();
  });
  server.on('request', provider.callback());
  return { url, close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) };
}
