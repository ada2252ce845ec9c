/**
 * npm run bench — Lanyard against bare oidc-provider in the same run, on the same database
 * engine instance: PGlite in memory, or DATABASE_URL with a fresh schema (dropped at the end).
 * Everything listens on 127.0.0.1 and every load is bounded in time. The suites to run are
 * chosen with BENCH_SUITES (comma-separated; default `tokens,login,overload`; the data-at-scale
 * suites `import,migration,outbox,sweep,seeded,soak` and `isolated`, the token endpoints with each
 * side in its own process, run only when named); each is a module
 * exporting `run(options): Promise<Row[]>` (bench/report.ts has the Row and the table) that can
 * also run alone. Targets: docs/benchmarks.md. A MISS is reported, not an error: exit code 0.
 */
import { cpus } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineBusyMs, ownAndChildrenBusyMs } from './scenarios.ts';
import { log, printReport, round, type Row } from './report.ts';
import { settings, startServers, type BenchServers, type SuiteOptions } from './servers.ts';

/** A suite: a module whose `run` returns rows. Suites that need no shared servers ignore `servers`. */
type Suite = { run(options: SuiteOptions): Promise<Row[]> };

/** The suites `BENCH_SUITES` can name, loaded only when named. */
const SUITES: Record<string, () => Promise<Suite>> = {
  tokens: () => import('./tokens.ts'),
  login: () => import('./login.ts'),
  overload: () => import('./overload.ts'),
  // The token endpoints with each side in a process of its own (a cross-check of `tokens`, whose
  // two servers share one process); about five minutes: chosen by name only.
  isolated: () => import('./isolated.ts').then((m) => ({ run: (o: SuiteOptions) => m.run({ log: o.log }) })),
  // Data at scale (issue 14): each sets up its own database and is sized by its BENCH_* settings
  // (docs/benchmarks.md); none shares the servers above. Long: chosen by name only.
  import: () => import('./import.ts').then((m) => ({ run: () => m.run({ url: process.env.DATABASE_URL || undefined, lines: process.env.BENCH_IMPORT_LINES ? Number(process.env.BENCH_IMPORT_LINES) : undefined }) })),
  migration: () => import('./migration.ts').then((m) => ({ run: (o: SuiteOptions) => m.run({ log: o.log }) })),
  outbox: () => import('./outbox.ts').then((m) => ({ run: (o: SuiteOptions) => m.run({ log: o.log }) })),
  sweep: () => import('./sweep.ts').then((m) => ({ run: () => m.run() })),
  seeded: () => import('./seeded.ts').then((m) => ({ run: (o: SuiteOptions) => m.run({ log: o.log }) })),
  soak: () => import('./soak.ts').then((m) => ({ run: (o: SuiteOptions) => m.run({ log: o.log }) })),
};
const DEFAULT_SUITES = ['tokens', 'login', 'overload'];

const chosen = (process.env.BENCH_SUITES ?? DEFAULT_SUITES.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
const unknown = chosen.filter((name) => !SUITES[name]);
if (unknown.length) {
  process.stderr.write(`BENCH_SUITES: unknown suite(s) ${unknown.join(', ')}; known: ${Object.keys(SUITES).join(', ')}\n`);
  process.exit(2);
}

const runStarted = performance.now();
const machineAtStart = machineBusyMs();
const ownAtStart = ownAndChildrenBusyMs();
let servers: Promise<BenchServers> | undefined;
const details: Record<string, unknown> = {};
const rows: Row[] = [];
const timings: Record<string, number> = {};

try {
  const options: SuiteOptions = {
    log,
    details,
    servers: () => (servers ??= startServers().then((s) => {
      log(`Lanyard vs bare oidc-provider — ${s.where}`);
      log(`${cpus().length} CPUs, Node ${process.version}; load generators in worker threads; warm-up ${settings.warmupRounds} × ${settings.warmupSeconds} s per side (logins ${settings.loginWarmupSeconds} s), then ${settings.seconds} s per side in ${settings.slices} slices, alternating L B B L L B B L`);
      return s;
    })),
  };
  for (const name of chosen) {
    const started = performance.now();
    log(`\n── suite ${name}`);
    const suite = await SUITES[name]!();
    rows.push(...(await suite.run(options)));
    timings[name] = round((performance.now() - started) / 1000, 1);
    log(`── suite ${name}: ${timings[name]} s`);
  }

  // How much CPU other processes took meanwhile: on two cores, anything sizeable skews the rates.
  // Both read /proc: this process and the children it waited for (the isolated suite's servers) are not "other".
  const machineMs = machineAtStart === undefined ? undefined : machineBusyMs()! - machineAtStart;
  const ownMs = ownAtStart === undefined ? undefined : ownAndChildrenBusyMs()! - ownAtStart;
  const otherCores = machineMs === undefined || ownMs === undefined ? undefined : Math.max(0, machineMs - ownMs) / (performance.now() - runStarted);
  const server = Boolean(process.env.DATABASE_URL);

  printReport(rows);
  if (otherCores !== undefined) {
    log(`other processes used ${round(otherCores, 2)} of ${cpus().length} cores on average during the run${server ? ' (the database server included)' : ''}`);
    if (!server && otherCores > 0.15) log('WARNING: the machine was not idle; rates (ratios less so) are skewed. Run again on a quiet machine.');
  }

  const out = join(import.meta.dirname, 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'latest.json'), `${JSON.stringify({
    at: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    database: server ? 'server' : 'embedded',
    suites: chosen,
    settings,
    suiteSeconds: timings,
    totalSeconds: round((performance.now() - runStarted) / 1000, 1),
    otherProcessesCores: otherCores === undefined ? null : round(otherCores, 2),
    rows,
    details,
  }, null, 2)}\n`);
  log(`\nwritten to bench/results/latest.json (${round((performance.now() - runStarted) / 1000)} s in all: ${Object.entries(timings).map(([n, s]) => `${n} ${s} s`).join(', ')})`);
} finally {
  if (servers) await (await servers).close();
}
