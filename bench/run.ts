/**
 * npm run bench — Lanyard against bare oidc-provider in the same run, on the same database
 * engine (PGlite in memory, or DATABASE_URL with a schema of its own). Loopback only, every load
 * bounded in time. Targets (docs/benchmarks.md): token endpoints ≥ 0.85× the baseline; password
 * logins within 10% of this machine's argon2id limit at the same parameters and concurrency.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import autocannon from 'autocannon';
import * as argon2 from 'argon2';
import { loadConfig } from '../src/config/load.ts';
import { createLogger } from '../src/shared/logger.ts';
import { openDatabase } from '../src/persistence/db.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { createRegistry } from '../src/registry.ts';
import { createApp } from '../src/app.ts';
import { PageDriver } from '../test/helpers/login-driver.ts';
import { startBaseline } from './baseline.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = 16;
const LOGIN_WORKERS = 4;
const POOL = Number(process.env.BENCH_REFRESH_POOL ?? 3000);
const PASSWORD = 'benchmark passphrase 2026';

const url = process.env.DATABASE_URL || undefined;
const schema = url ? `lanyard_bench_${randomBytes(4).toString('hex')}` : undefined;
const db = await openDatabase({ url, schema, poolSize: 20 });
await migrate(db);

// Lanyard, as `npm start` builds it, on an ephemeral loopback port.
const http = createServer();
await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
const lanyardUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
const config = loadConfig({ NODE_ENV: 'test' }, { overrides: { issuer: lanyardUrl, secretKey: randomBytes(32).toString('base64url'), dataDir: join(tmpdir(), 'lanyard-bench'), logLevel: 'silent' } });
const registry = await createRegistry(config, { logger: createLogger('silent'), db });
http.on('request', createApp(registry).callback());

const redirectUri = 'http://127.0.0.1:9/callback';
const service = { id: 'bench-service', secret: randomBytes(24).toString('base64url') };
const web = { id: 'bench-web', secret: randomBytes(24).toString('base64url'), redirectUri };
await registry.clients.create({ clientId: service.id, clientSecret: service.secret, kind: 'service', name: 'Bench service' });
await registry.clients.create({ clientId: web.id, clientSecret: web.secret, kind: 'web', name: 'Bench web', firstParty: true, redirectUris: [redirectUri] });
const account = await registry.accounts.create({ email: 'bench@example.com', password: PASSWORD, name: 'Bench', emailVerified: true });
const baseline = await startBaseline(db, { service, web });

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

/**
 * Completed requests per second for one autocannon run; only 2xx answers count. With `amount`,
 * the run stops after that many requests (a pool of single-use tokens) instead of after SECONDS.
 */
async function load(target: string, path: string, auth: string, body: () => string, amount?: number): Promise<{ rps: number; errors: number }> {
  const started = performance.now();
  let ok = 0;
  let last = started;
  const result = await autocannon({
    url: target,
    connections: CONNECTIONS,
    ...(amount ? { amount } : { duration: SECONDS }),
    requests: [{
      method: 'POST',
      path,
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: auth },
      setupRequest: (req) => ({ ...req, body: body() }),
      onResponse: (status) => {
        if (status >= 200 && status < 300) {
          ok += 1;
          last = performance.now();
        }
      },
    }],
  });
  // Timed to the last successful response: autocannon ends `amount` runs on its 1-second tick.
  return { rps: ok / ((last - started) / 1000), errors: result.non2xx + result.errors };
}

/** Refresh tokens from real authorization code + PKCE flows in one signed-in browser session. */
async function refreshPool(base: string, count: number): Promise<string[]> {
  const driver = new PageDriver(base);
  const tokens: string[] = [];
  const one = async () => {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const query = new URLSearchParams({ client_id: web.id, response_type: 'code', scope: 'openid', redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256' });
    const callback = await driver.authorize(`${base}/auth?${query}`, { email: account.email, password: PASSWORD });
    const res = await fetch(`${base}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(web.id, web.secret) },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: redirectUri, code_verifier: verifier }),
    });
    const json = (await res.json()) as { refresh_token?: string };
    if (!json.refresh_token) throw new Error(`no refresh token from ${base}: ${JSON.stringify(json)}`);
    tokens.push(json.refresh_token);
  };
  await one(); // signs the session in (Lanyard: through the password pages)
  for (let i = 1; i < count; i += 8) await Promise.all(Array.from({ length: Math.min(8, count - i) }, one));
  return tokens;
}

/** Operations per second of `work`, with `workers` running it back to back for SECONDS. */
async function loop(workers: number, work: () => Promise<void>): Promise<number> {
  const until = performance.now() + SECONDS * 1000;
  let done = 0;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (performance.now() < until) {
      await work();
      done += 1;
    }
  }));
  return done / SECONDS;
}

/** A cookie jar just big enough for one login (the load generator shares the CPU: keep it light). */
function browser(base: string) {
  const jar = new Map<string, string>();
  return async (path: string, init: RequestInit = {}) => {
    const res = await fetch(new URL(path, base), { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair!.indexOf('=');
      jar.set(pair!.slice(0, at), pair!.slice(at + 1));
    }
    return res;
  };
}

/** One complete password login: authorize → login page → password → back to the client with a code. */
async function fullLogin(): Promise<void> {
  const go = browser(lanyardUrl);
  const challenge = createHash('sha256').update(randomBytes(32)).digest('base64url');
  const auth = await go(`/auth?${new URLSearchParams({ client_id: web.id, response_type: 'code', scope: 'openid', redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256' })}`);
  const uid = /\/interaction\/([^/?]+)/.exec(auth.headers.get('location') ?? '')![1]!;
  const page = await (await go(`/interaction/${uid}`)).text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page)![1]!;
  const done = await go(`/interaction/${uid}/password`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: csrf, email: account.email, password: PASSWORD }) });
  if (done.status !== 303) throw new Error(`login failed: ${done.status}`);
  const resume = await go(new URL(done.headers.get('location')!, lanyardUrl).pathname);
  if (!resume.headers.get('location')?.startsWith(redirectUri)) throw new Error('login did not reach the client');
}

type Row = { scenario: string; lanyard: number; baseline: number; ratio: number; target: number; verdict: string; note?: string };
const rows: Row[] = [];
const row = (scenario: string, lanyard: number, baselineValue: number, target: number, note?: string) => {
  const ratio = lanyard / baselineValue;
  rows.push({ scenario, lanyard: Math.round(lanyard), baseline: Math.round(baselineValue), ratio: Math.round(ratio * 100) / 100, target, verdict: ratio >= target ? 'PASS' : 'MISS', ...(note ? { note } : {}) });
};

process.stdout.write(`engine: ${db.engine}${url ? ' (DATABASE_URL)' : ' (embedded)'}, ${SECONDS}s per run, ${CONNECTIONS} connections\n`);

// 1. client_credentials
const ccBody = () => 'grant_type=client_credentials';
await load(lanyardUrl, '/token', basic(service.id, service.secret), ccBody); // warm-up
const ccLanyard = await load(lanyardUrl, '/token', basic(service.id, service.secret), ccBody);
await load(baseline.url, '/token', basic(service.id, service.secret), ccBody);
const ccBaseline = await load(baseline.url, '/token', basic(service.id, service.secret), ccBody);
row('client_credentials /token', ccLanyard.rps, ccBaseline.rps, 0.85, `errors ${ccLanyard.errors}/${ccBaseline.errors}`);

// 2. refresh_token (each token used once: rotation)
process.stdout.write(`building ${POOL} refresh tokens per server through real code + PKCE flows…\n`);
const lanyardPool = await refreshPool(lanyardUrl, POOL);
const baselinePool = await refreshPool(baseline.url, POOL);
const refreshBody = (pool: string[]) => () => `grant_type=refresh_token&refresh_token=${pool.pop() ?? 'exhausted'}`;
const rtLanyard = await load(lanyardUrl, '/token', basic(web.id, web.secret), refreshBody(lanyardPool), POOL);
const rtBaseline = await load(baseline.url, '/token', basic(web.id, web.secret), refreshBody(baselinePool), POOL);
row('refresh_token /token', rtLanyard.rps, rtBaseline.rps, 0.85, `errors ${rtLanyard.errors}/${rtBaseline.errors}`);

// 3. password logins against the argon2id limit at the same parameters and concurrency
const hash = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: config.argon2.memoryKiB, timeCost: config.argon2.timeCost, parallelism: config.argon2.parallelism });
const argonLimit = await loop(LOGIN_WORKERS, async () => { await argon2.verify(hash, PASSWORD); });
const logins = await loop(LOGIN_WORKERS, fullLogin);
row('password login (full flow)', logins, argonLimit, 0.9, 'baseline = argon2id verifications/s');

console.table(rows);
const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'latest.json'), `${JSON.stringify({ at: new Date().toISOString(), engine: db.engine, server: Boolean(url), seconds: SECONDS, rows }, null, 2)}\n`);
for (const r of rows) if (r.verdict === 'MISS') process.stdout.write(`MISS: ${r.scenario} at ${r.ratio}× (target ${r.target}×)\n`);

await baseline.close();
http.closeAllConnections();
http.close();
await registry.close();
if (schema) await db.query(`DROP SCHEMA "${schema}" CASCADE`);
await db.close();
