/**
 * The token endpoints with each side in a process of its own: a cross-check of `npm run bench`,
 * whose two servers share one process (and so oidc-provider's compiled code, its inline caches
 * and the heap the collector walks). Not part of `npm run bench`:
 *
 *   node --experimental-strip-types bench/isolated.ts [client_credentials,userinfo,introspection]
 *
 * For each scenario, eight processes one after the other, Lanyard's and the baseline's
 * alternating (L B B L L B B L): each opens its own database (DATABASE_URL with a schema of its
 * own, or PGlite in memory), starts one server as the bench does (bench/lanyard.ts,
 * bench/baseline.ts), warms it up (3 × BENCH_WARMUP s), then measures BENCH_SECONDS (default 5)
 * in two slices with the bench's load generator (16 connections, in a worker thread of that
 * process) and reports what was answered and its main thread's CPU. Printed: each side's rate and
 * CPU per request over its four processes, and the ratio against the token endpoints' target.
 * Also a suite of `npm run bench`, chosen by name: BENCH_SUITES=isolated (or tokens,isolated).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as argon2 from 'argon2';
import { benchDatabase, newBenchClients, startLanyard, type BenchClients } from './lanyard.ts';
import { startBaseline } from './baseline.ts';
import { baselinePasswordPage, combineRates, hammer, passwordPages, tokensFrom, type LoadJob, type Rate } from './scenarios.ts';
import { basic, browser } from './browser.ts';
import { ratioRow, tokenTarget, type Row } from './report.ts';

type Side = 'lanyard' | 'baseline';
const SCENARIOS = ['client_credentials', 'userinfo', 'introspection'] as const;
type Scenario = (typeof SCENARIOS)[number];
const PASSWORD = 'benchmark passphrase 2026';
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const warmup = Number(process.env.BENCH_WARMUP ?? 1);

/** One process: one server, one scenario; prints `{ ok, seconds, cpuMs }` as its last line. */
async function child(side: Side, scenario: Scenario): Promise<void> {
  const { db, close: closeDb } = await benchDatabase('lanyard_isolated');
  try {
    const clients: BenchClients = newBenchClients();
    let server: { url: string; close(): Promise<void> };
    let signIn;
    if (side === 'lanyard') {
      const lanyard = await startLanyard(db, clients, PASSWORD);
      server = lanyard;
      signIn = passwordPages(lanyard.account.email, PASSWORD);
    } else {
      // The same hash cost as bench/servers.ts gives it (Lanyard's test parameters).
      const passwordHash = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 });
      server = await startBaseline(db, clients, {}, { passwordHash });
      signIn = baselinePasswordPage('bench@example.com', PASSWORD);
    }
    try {
      let job: (secs: number) => LoadJob;
      if (scenario === 'client_credentials') {
        job = (secs) => ({ url: server.url, path: '/token', authorization: basic(clients.service.id, clients.service.secret), connections: 16, seconds: secs, body: 'grant_type=client_credentials' });
      } else {
        const token = (await tokensFrom(browser(server.url), server.url, clients.web, signIn, 'openid email profile')).access_token!;
        job = scenario === 'userinfo'
          ? (secs) => ({ url: server.url, path: '/me', method: 'GET', authorization: `Bearer ${token}`, connections: 16, seconds: secs })
          : (secs) => ({ url: server.url, path: '/token/introspection', authorization: basic(clients.web.id, clients.web.secret), connections: 16, seconds: secs, body: `token=${encodeURIComponent(token)}&token_type_hint=access_token` });
      }
      for (let i = 0; i < 3; i += 1) await hammer(job(warmup));
      const rates: Rate[] = [];
      for (let i = 0; i < 2; i += 1) rates.push(await hammer(job(seconds / 2)));
      const all = combineRates(rates);
      if (all.non2xx || all.errors) throw new Error(`${side} ${scenario}: ${all.non2xx} non-2xx, ${all.errors} errors`);
      process.stdout.write(`${JSON.stringify({ ok: all.ok, seconds: all.seconds, cpuMs: all.serverCpuMs * all.ok })}\n`);
    } finally {
      await server.close();
    }
  } finally {
    await closeDb();
  }
}

/**
 * The suite (`BENCH_SUITES=isolated npm run bench`, chosen by name only: about 95 s per scenario
 * here) and the tool: one row per scenario, with the token endpoints' target for the engine.
 */
export async function run(options: { log?: (line: string) => void; scenarios?: Scenario[] } = {}): Promise<Row[]> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const scenarios = options.scenarios ?? SCENARIOS.slice();
  const self = fileURLToPath(import.meta.url);
  const engine = process.env.DATABASE_URL ? 'server' : 'embedded';
  const order: Side[] = ['lanyard', 'baseline', 'baseline', 'lanyard', 'lanyard', 'baseline', 'baseline', 'lanyard'];
  log(`each side in its own process (${engine}); ${order.length} processes per scenario (${order.map((s) => s[0]!.toUpperCase()).join(' ')}), ${seconds} s measured in each`);
  const rows: Row[] = [];
  for (const scenario of scenarios) {
    const sums: Record<Side, { ok: number; seconds: number; cpuMs: number }> = { lanyard: { ok: 0, seconds: 0, cpuMs: 0 }, baseline: { ok: 0, seconds: 0, cpuMs: 0 } };
    for (const side of order) {
      const child = spawnSync(process.execPath, [...process.execArgv, self, 'child', side, scenario], { encoding: 'utf8', env: process.env, stdio: ['ignore', 'pipe', 'inherit'] });
      if (child.status !== 0) throw new Error(`${side} ${scenario}: the process exited with ${child.status}`);
      const result = JSON.parse(child.stdout.trim().split('\n').pop()!) as { ok: number; seconds: number; cpuMs: number };
      sums[side].ok += result.ok;
      sums[side].seconds += result.seconds;
      sums[side].cpuMs += result.cpuMs;
    }
    const rate = (s: Side) => sums[s].ok / sums[s].seconds;
    const cpu = (s: Side) => sums[s].cpuMs / sums[s].ok;
    log(`${scenario}, each side in its own process: Lanyard ${Math.round(rate('lanyard'))} req/s, baseline ${Math.round(rate('baseline'))} req/s`);
    rows.push(ratioRow({
      scenario: `${scenario}, each side in its own process`, unit: 'req/s', lanyard: Math.round(rate('lanyard')), baseline: Math.round(rate('baseline')), target: tokenTarget(engine),
      notes: `main-thread CPU/request ${cpu('lanyard').toFixed(2)}/${cpu('baseline').toFixed(2)} ms; ${order.length / 2} processes a side, ${seconds} s each (bench/isolated.ts)`,
    }));
  }
  return rows;
}

if (process.argv[2] === 'child') {
  await child(process.argv[3] as Side, process.argv[4] as Scenario);
} else if (import.meta.main) {
  const wanted = (process.argv[2] ?? SCENARIOS.join(',')).split(',') as Scenario[];
  for (const s of wanted) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}: one of ${SCENARIOS.join(', ')}`);
  const rows = await run({ scenarios: wanted });
  process.stdout.write('| scenario | Lanyard req/s | baseline req/s | ratio | target | verdict | notes |\n|---|---|---|---|---|---|---|\n');
  for (const r of rows) process.stdout.write(`| ${r.scenario} | ${r.lanyard} | ${r.baseline} | ${r.ratio.toFixed(2)} | ≥ ${r.target} | ${r.verdict} | ${r.notes} |\n`);
}
