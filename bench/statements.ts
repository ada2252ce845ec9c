import { randomBytes } from 'node:crypto';
import { openDatabase } from '../src/persistence/db.ts';
import { countingDatabase, type SqlCounts } from './counting-db.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { newBenchClients, startLanyard, type BenchClients } from './lanyard.ts';
import { basic, browser, pkce } from './browser.ts';
import { authorize, passwordPages } from './scenarios.ts';

/**
 * `npm run bench:statements`: the SQL statements and commits one password login and one refresh
 * cost on Lanyard, each listed in order (docs/benchmarks.md, "Statements per operation"). Counts,
 * not timings: they do not depend on the machine. With DATABASE_URL, against the server.
 */

/** A statement, or (`marker`) the HTTP request the statements after it belong to. */
interface Recorded { sql: string; inTransaction: boolean; marker?: boolean }

const url = process.env.DATABASE_URL || undefined;
const schema = url ? `lanyard_statements_${randomBytes(4).toString('hex')}` : undefined;
const inner = await openDatabase({ url, schema, poolSize: 4 });
const statements: Recorded[] = [];
const counts: SqlCounts = { statements: 0, commits: 0 };
/** The tables a statement writes (a batch's parts included), as the listing shows them. */
const written = (sql: string) => [...new Set([...sql.matchAll(/\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+([a-z_][a-z0-9_]*)/gi)].map((m) => m[1]!.toLowerCase()).filter((t) => t !== 'set'))];
const short = (sql: string) => {
  const line = sql.replace(/\s+/g, ' ').trim().slice(0, 110);
  const tables = /^\s*SELECT\b/i.test(sql) ? [] : written(sql);
  return tables.length > 1 ? `${line} … [writes ${tables.join(', ')}]` : line;
};
const PASSWORD = 'bench password, long enough 0123';

try {
  await migrate(inner);
  const clients: BenchClients = newBenchClients();
  const lanyard = await startLanyard(countingDatabase(inner, counts, (sql, inTransaction) => statements.push({ sql: short(sql), inTransaction })), clients, PASSWORD);
  const signIn = passwordPages(lanyard.account.email, PASSWORD);
  /** A browser whose requests are marked in the list, so each statement shows the request it served. */
  const marked = (base: string) => {
    const go = browser(base);
    return (path: string, init?: RequestInit) => {
      statements.push({ sql: `── ${init?.method ?? 'GET'} ${path.split('?')[0]}`, inTransaction: false, marker: true });
      return go(path, init);
    };
  };

  async function measure(name: string, work: () => Promise<void>) {
    await work(); // warm: caches (clients, keys) filled as in steady state
    statements.length = 0;
    counts.commits = 0;
    await work();
    const sql = statements.filter((s) => !s.marker);
    const writes = sql.filter((s) => /^(INSERT|UPDATE|DELETE|WITH)/i.test(s.sql)).length;
    process.stdout.write(`\n${name}: ${sql.length} statements (${writes} writing), ${counts.commits} commits (writing statements outside a transaction, and transactions that wrote)\n`);
    let n = 0;
    for (const s of statements) {
      if (s.marker) process.stdout.write(`     ${s.sql}\n`);
      else process.stdout.write(`  ${String((n += 1)).padStart(2)}${s.inTransaction ? ' tx' : '   '} ${s.sql}\n`);
    }
  }

  await measure('password login (GET /auth … code, fresh browser)', async () => {
    await authorize(marked(lanyard.url), lanyard.url, clients.web, pkce().challenge, signIn);
  });

  // A refresh token from a real code flow, then one refresh (rotation).
  const go = browser(lanyard.url);
  async function refreshToken(): Promise<string> {
    const { verifier, challenge } = pkce();
    const code = await authorize(go, lanyard.url, clients.web, challenge, signIn);
    const res = await fetch(`${lanyard.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(clients.web.id, clients.web.secret) }, body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: clients.web.redirectUri, code_verifier: verifier }).toString() });
    return ((await res.json()) as { refresh_token: string }).refresh_token;
  }
  const tokens = [await refreshToken(), await refreshToken()];
  await measure('refresh_token (POST /token, rotation)', async () => {
    const res = await fetch(`${lanyard.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(clients.web.id, clients.web.secret) }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.shift()! }).toString() });
    if (res.status !== 200) throw new Error(`refresh: ${res.status} ${await res.text()}`);
  });
  // An access token from a real code flow, then one userinfo and one introspection (the reads).
  const access = await (async () => {
    const { verifier, challenge } = pkce();
    const code = await authorize(go, lanyard.url, clients.web, challenge, signIn);
    const res = await fetch(`${lanyard.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(clients.web.id, clients.web.secret) }, body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: clients.web.redirectUri, code_verifier: verifier }).toString() });
    return ((await res.json()) as { access_token: string }).access_token;
  })();
  await measure('userinfo (GET /me)', async () => {
    const res = await fetch(`${lanyard.url}/me`, { headers: { authorization: `Bearer ${access}` } });
    if (res.status !== 200) throw new Error(`userinfo: ${res.status} ${await res.text()}`);
  });
  await measure('introspection (POST /token/introspection)', async () => {
    const res = await fetch(`${lanyard.url}/token/introspection`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(clients.web.id, clients.web.secret) }, body: new URLSearchParams({ token: access, token_type_hint: 'access_token' }).toString() });
    if (!((await res.json()) as { active?: boolean }).active) throw new Error('introspection: the token is not active');
  });
  await lanyard.close();
} finally {
  if (schema) await inner.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
  await inner.close();
}
