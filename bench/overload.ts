/**
 * The overload suite of `npm run bench` (BENCH_SUITES=overload): while password logins saturate
 * the hashing (more concurrent logins than the bounded hashing queue admits, so some are told
 * 503 + Retry-After), how slow do the cheap endpoints get? p99 latency of `POST /token`
 * (client_credentials), `GET /jwks` and `GET /.well-known/openid-configuration`, loaded and
 * unloaded in the same run; target: loaded p99 ≤ 3× unloaded p99.
 *
 * The probes send a fixed rate each (open loop: a slow answer does not slow the sending), from a
 * worker thread; the logins come from another worker thread, so neither load generator runs on
 * the servers' event loop. Slices alternate unloaded, loaded, loaded, unloaded.
 *
 *   node --experimental-strip-types bench/overload.ts     (this suite alone)
 */
import { Worker } from 'node:worker_threads';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { availableParallelism } from 'node:os';
import { basic } from './browser.ts';
import { printReport, round, upperRow, type Row } from './report.ts';
import { settings, standalone, type SuiteOptions } from './servers.ts';
import type { Probe, ProbeResult } from './probe-worker.ts';
import type { LoginLoad, LoginLoadResult } from './login-load-worker.ts';

/** Requests per second of each probe: light enough not to load the server by themselves. */
const PROBE_RATE = 40;
/** The target: loaded p99 at most this many times the unloaded p99. */
const TARGET = 3;
/** An unloaded p99 above this (ms) makes the verdict inconclusive: these endpoints answer in a few ms on an idle machine. */
const INCONCLUSIVE_MS = 100;
/**
 * The login load generator's thread runs at this nice value (BENCH_LOAD_NICE): in a deployment
 * the browsers are elsewhere, and their CPU here should not be taken from the server's. The
 * probes keep the process's priority.
 */
const LOAD_NICE = Number(process.env.BENCH_LOAD_NICE ?? 10);
/** Accounts the login load is spread over, so that no single address's throttle decides the outcome. */
const ACCOUNTS = 16;

function inWorker<T>(module: string, data: unknown): Promise<T> {
  const worker = new Worker(new URL(module, import.meta.url), { workerData: data });
  return new Promise<T>((resolve, reject) => {
    worker.once('message', (message: T) => {
      resolve(message);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`${module} exited with ${code}`)));
  });
}

const percentile = (sorted: number[], p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]! : Number.NaN);

export async function run(options: SuiteOptions): Promise<Row[]> {
  const s = await options.servers();
  const { log, details } = options;
  const seconds = settings.seconds;
  const slice = seconds / 2;
  const hashQueue = s.lanyard.config.passwordHashConcurrency;
  // Twice as many browsers logging in as the queue admits: the hashing stays saturated and the
  // queue's bound is reached.
  const loginWorkers = 2 * hashQueue;
  const emails: string[] = [];
  for (let i = 0; i < ACCOUNTS; i += 1) {
    const account = await s.lanyard.registry.accounts.create({ email: `overload-${i}@example.com`, password: s.password, name: `Overload ${i}`, emailVerified: true });
    emails.push(account.email);
  }

  const probes: Probe[] = [
    {
      name: 'POST /token (client_credentials)', url: s.urls.lanyard, path: '/token', method: 'POST', rate: PROBE_RATE,
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(s.clients.service.id, s.clients.service.secret) }, body: 'grant_type=client_credentials',
    },
    { name: 'GET /jwks', url: s.urls.lanyard, path: '/jwks', method: 'GET', rate: PROBE_RATE, headers: {} },
    { name: 'GET /.well-known/openid-configuration', url: s.urls.lanyard, path: '/.well-known/openid-configuration', method: 'GET', rate: PROBE_RATE, headers: {} },
  ];
  const loginLoad = (secs: number): LoginLoad => ({ url: s.urls.lanyard, client: s.clients.web, accounts: emails, password: s.password, workers: loginWorkers, seconds: secs, nice: LOAD_NICE });

  const collected = { unloaded: new Map<string, ProbeResult[]>(), loaded: new Map<string, ProbeResult[]>() };
  const loopDelay = { unloaded: [] as number[], loaded: [] as number[] };
  const logins: LoginLoadResult[] = [];
  const measure = async (state: 'unloaded' | 'loaded') => {
    const delay = monitorEventLoopDelay({ resolution: 1 });
    let load: Promise<LoginLoadResult> | undefined;
    if (state === 'loaded') {
      // The logins start half a second early, so the hashing is saturated when the probes start.
      load = inWorker<LoginLoadResult>('./login-load-worker.ts', loginLoad(slice + 0.5));
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    delay.enable();
    const results = await inWorker<ProbeResult[]>('./probe-worker.ts', { probes, seconds: slice });
    delay.disable();
    if (load) logins.push(await load);
    loopDelay[state].push(delay.percentile(99) / 1e6);
    for (const r of results) collected[state].set(r.name, [...(collected[state].get(r.name) ?? []), r]);
  };

  // Warm-up: one short round of each, so that neither state pays for the first JIT.
  await inWorker<ProbeResult[]>('./probe-worker.ts', { probes, seconds: settings.warmupSeconds });
  await inWorker<LoginLoadResult>('./login-load-worker.ts', loginLoad(settings.warmupSeconds));
  for (const state of ['unloaded', 'loaded', 'loaded', 'unloaded'] as const) await measure(state);

  const rows: Row[] = [];
  const summary: Record<string, unknown> = {};
  for (const probe of probes) {
    const stats = (state: 'unloaded' | 'loaded') => {
      const runs = collected[state].get(probe.name) ?? [];
      const sorted = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
      return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.at(-1) ?? Number.NaN, answered: sorted.length, non2xx: runs.reduce((n, r) => n + r.non2xx, 0), errors: runs.reduce((n, r) => n + r.errors, 0) };
    };
    const unloaded = stats('unloaded');
    const loaded = stats('loaded');
    summary[probe.name] = { unloaded, loaded };
    const row = upperRow({
      scenario: `overload: ${probe.name} p99`, unit: 'ms loaded / unloaded', lanyard: round(loaded.p99, 1), baseline: round(unloaded.p99, 1), target: TARGET,
      notes: `p50 ${round(loaded.p50, 1)} / ${round(unloaded.p50, 1)} ms; max ${round(loaded.max, 1)} / ${round(unloaded.max, 1)} ms; ${loaded.answered}/${unloaded.answered} answers at ${PROBE_RATE}/s; non-2xx ${loaded.non2xx}/${unloaded.non2xx}; errors ${loaded.errors}/${unloaded.errors}`,
    });
    // An unloaded p99 this high means the machine itself was saturated by other work: the ratio
    // then compares two saturated states and says nothing about the target.
    if (unloaded.p99 > INCONCLUSIVE_MS) {
      row.verdict = '—';
      row.notes = `inconclusive: unloaded p99 above ${INCONCLUSIVE_MS} ms, the machine was busy; ${row.notes}`;
    }
    rows.push(row);
  }
  const statuses: Record<string, number> = {};
  for (const l of logins) for (const [status, n] of Object.entries(l.statuses)) statuses[status] = (statuses[status] ?? 0) + n;
  const attempts = Object.values(statuses).reduce((a, b) => a + b, 0);
  const busy = statuses['503'] ?? 0;
  const signedIn = logins.reduce((n, l) => n + l.completed, 0);
  const loginSeconds = logins.reduce((n, l) => n + l.seconds, 0);
  const maxDelay = (list: number[]) => round(Math.max(...list), 1);
  rows.push({
    scenario: 'overload: password attempts', unit: 'attempts / 503', kind: 'counts', targetText: '(report)',
    lanyard: attempts, baseline: busy, ratio: round(attempts ? busy / attempts : 0, 3), target: null, verdict: '—',
    notes: `${busy} of ${attempts} password attempts answered 503 (ratio column: their share); ${signedIn} logins completed (${round(signedIn / loginSeconds, 1)}/s); statuses ${JSON.stringify(statuses)}; ${loginWorkers} browsers, hashing queue ${hashQueue}, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'} at nice ${s.lanyard.config.workerPoolNice} (WORKER_POOL_NICE), login load generator at nice ${LOAD_NICE}, ${availableParallelism()} CPUs; event-loop delay p99 loaded ${maxDelay(loopDelay.loaded)} ms, unloaded ${maxDelay(loopDelay.unloaded)} ms`,
  });
  details.overload = { probes: summary, logins, statuses, loopDelayP99Ms: loopDelay, probeRate: PROBE_RATE, loginWorkers, hashQueue };
  log(`overload: ${attempts} password attempts, ${busy} answered 503, ${signedIn} logins completed; event-loop delay p99 ${maxDelay(loopDelay.loaded)} ms loaded, ${maxDelay(loopDelay.unloaded)} ms unloaded`);
  return rows;
}

if (import.meta.main) {
  const { options, done } = standalone();
  try {
    printReport(await run(options));
  } finally {
    await done();
  }
}
