/**
 * The overload suite of `npm run bench` (BENCH_SUITES=overload): while password logins saturate
 * the hashing (more concurrent logins than the bounded hashing queue admits, so some are told
 * 503 + Retry-After), how slow do the cheap endpoints get? p99 latency of `POST /token`
 * (client_credentials), `GET /jwks` and `GET /.well-known/openid-configuration`, loaded and
 * unloaded in the same run; target: loaded p99 ≤ 3× unloaded p99.
 *
 * Two loads of the same 16 browsers (decision 0060): the verdict's, whose browsers wait the
 * Retry-After of a 503 and post the busy page's form again (decision 0061), as a person shown it
 * does and as RFC 9110 §10.2.3 asks of a client; and an impatient one, which starts a new login
 * at once (a script that ignores the header), reported beside it without a target.
 *
 * The probes send a fixed rate each (open loop: a slow answer does not slow the sending), from a
 * worker thread; the logins come from another worker thread, so neither load generator runs on
 * the servers' event loop. Slices alternate unloaded, loaded, impatient, impatient, loaded,
 * unloaded; each state gets at least 10 s (400 answers a probe), so that its p99 is not one
 * stray sample.
 *
 *   node --experimental-strip-types bench/overload.ts     (this suite alone)
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { availableParallelism } from 'node:os';
import { basic } from './browser.ts';
import { inWorker } from './scenarios.ts';
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
 * The login load generator's thread runs at this nice value (BENCH_LOAD_NICE, bench/servers.ts):
 * in a deployment the browsers are elsewhere, and their CPU here should not be taken from the
 * server's. The probes keep the process's priority.
 */
const LOAD_NICE = settings.loadNice;
/** Accounts the login load is spread over, so that no single address's throttle decides the outcome. */
const ACCOUNTS = 16;

const percentile = (sorted: number[], p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]! : Number.NaN);

export async function run(options: SuiteOptions): Promise<Row[]> {
  const s = await options.servers();
  const { log, details } = options;
  // Each state is measured in two slices; at 40 answers a second a probe's p99 needs a few hundred.
  const slice = Math.max(5, settings.seconds);
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
  const loginLoad = (secs: number, honourRetryAfter: boolean): LoginLoad => ({ url: s.urls.lanyard, client: s.clients.web, accounts: emails, password: s.password, workers: loginWorkers, seconds: secs, nice: LOAD_NICE, honourRetryAfter });

  type State = 'unloaded' | 'loaded' | 'impatient';
  const states: State[] = ['unloaded', 'loaded', 'impatient'];
  const collected = Object.fromEntries(states.map((st) => [st, new Map<string, ProbeResult[]>()])) as Record<State, Map<string, ProbeResult[]>>;
  const loopDelay: Record<State, number[]> = { unloaded: [], loaded: [], impatient: [] };
  const logins: Record<'loaded' | 'impatient', LoginLoadResult[]> = { loaded: [], impatient: [] };
  const measure = async (state: State) => {
    const delay = monitorEventLoopDelay({ resolution: 1 });
    let load: Promise<LoginLoadResult> | undefined;
    if (state !== 'unloaded') {
      // The logins start a second early, so the hashing is saturated (and, for the patient load,
      // the first 503s' waits are under way) when the probes start.
      load = inWorker<LoginLoadResult>('./login-load-worker.ts', loginLoad(slice + 1, state === 'loaded'));
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    delay.enable();
    const results = await inWorker<ProbeResult[]>('./probe-worker.ts', { probes, seconds: slice });
    delay.disable();
    if (load) logins[state as 'loaded' | 'impatient'].push(await load);
    loopDelay[state].push(delay.percentile(99) / 1e6);
    for (const r of results) collected[state].set(r.name, [...(collected[state].get(r.name) ?? []), r]);
  };

  // Warm-up: one short round of each, so that neither state pays for the first JIT.
  await inWorker<ProbeResult[]>('./probe-worker.ts', { probes, seconds: settings.warmupSeconds });
  await inWorker<LoginLoadResult>('./login-load-worker.ts', loginLoad(settings.warmupSeconds, false));
  for (const state of ['unloaded', 'loaded', 'impatient', 'impatient', 'loaded', 'unloaded'] as const) await measure(state);

  const rows: Row[] = [];
  const summary: Record<string, unknown> = {};
  const stats = (probe: Probe, state: State) => {
    const runs = collected[state].get(probe.name) ?? [];
    const sorted = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
    return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.at(-1) ?? Number.NaN, answered: sorted.length, non2xx: runs.reduce((n, r) => n + r.non2xx, 0), errors: runs.reduce((n, r) => n + r.errors, 0) };
  };
  const impatientRatios: string[] = [];
  for (const probe of probes) {
    const unloaded = stats(probe, 'unloaded');
    const loaded = stats(probe, 'loaded');
    const impatient = stats(probe, 'impatient');
    summary[probe.name] = { unloaded, loaded, impatient };
    impatientRatios.push(`${probe.name.split(' (')[0]} ${round(impatient.p99, 1)} ms (${round(impatient.p99 / unloaded.p99, 2)}×, p50 ${round(impatient.p50, 1)})`);
    const row = upperRow({
      scenario: `overload: ${probe.name} p99`, unit: 'ms loaded / unloaded', lanyard: round(loaded.p99, 1), baseline: round(unloaded.p99, 1), target: TARGET,
      notes: `logins that wait Retry-After; p50 ${round(loaded.p50, 1)} / ${round(unloaded.p50, 1)} ms; max ${round(loaded.max, 1)} / ${round(unloaded.max, 1)} ms; ${loaded.answered}/${unloaded.answered} answers at ${PROBE_RATE}/s; non-2xx ${loaded.non2xx}/${unloaded.non2xx}; errors ${loaded.errors}/${unloaded.errors}`,
    });
    // An unloaded p99 this high means the machine itself was saturated by other work: the ratio
    // then compares two saturated states and says nothing about the target.
    if (unloaded.p99 > INCONCLUSIVE_MS) {
      row.verdict = '—';
      row.notes = `inconclusive: unloaded p99 above ${INCONCLUSIVE_MS} ms, the machine was busy; ${row.notes}`;
    }
    rows.push(row);
  }
  const maxDelay = (list: number[]) => round(Math.max(...list), 1);
  const attemptsRow = (state: 'loaded' | 'impatient'): Row => {
    const statuses: Record<string, number> = {};
    for (const l of logins[state]) for (const [status, n] of Object.entries(l.statuses)) statuses[status] = (statuses[status] ?? 0) + n;
    const attempts = Object.values(statuses).reduce((a, b) => a + b, 0);
    const busy = statuses['503'] ?? 0;
    const signedIn = logins[state].reduce((n, l) => n + l.completed, 0);
    const loginSeconds = logins[state].reduce((n, l) => n + l.seconds, 0);
    const who = state === 'loaded' ? 'browsers waiting Retry-After' : 'impatient browsers (Retry-After ignored)';
    return {
      scenario: `overload: password attempts, ${state === 'loaded' ? 'patient' : 'impatient'} load`, unit: 'attempts / 503', kind: 'counts', targetText: '(report)',
      lanyard: attempts, baseline: busy, ratio: round(attempts ? busy / attempts : 0, 3), target: null, verdict: '—',
      notes: `${loginWorkers} ${who}: ${busy} of ${attempts} password attempts answered 503 (ratio column: their share); ${signedIn} logins completed (${round(signedIn / loginSeconds, 1)}/s); statuses ${JSON.stringify(statuses)}; event-loop delay p99 ${maxDelay(loopDelay[state])} ms (unloaded ${maxDelay(loopDelay.unloaded)} ms)`,
    };
  };
  rows.push(attemptsRow('loaded'));
  rows.push({
    scenario: 'overload: impatient load, p99', unit: 'ms (× unloaded)', kind: 'counts', targetText: '(report)',
    lanyard: round(Math.max(...probes.map((p) => stats(p, 'impatient').p99)), 1), baseline: round(Math.max(...probes.map((p) => stats(p, 'unloaded').p99)), 1), ratio: round(Math.max(...probes.map((p) => stats(p, 'impatient').p99 / stats(p, 'unloaded').p99)), 2), target: null, verdict: '—',
    notes: `the same browsers starting again at once after a 503: ${impatientRatios.join('; ')} (columns: the worst of the three)`,
  });
  const last = attemptsRow('impatient');
  last.notes += `; hashing queue ${hashQueue}, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'} at nice ${s.lanyard.config.workerPoolNice} (WORKER_POOL_NICE), login load generator at nice ${LOAD_NICE}, ${availableParallelism()} CPUs`;
  rows.push(last);
  details.overload = { probes: summary, logins, loopDelayP99Ms: loopDelay, probeRate: PROBE_RATE, loginWorkers, hashQueue, sliceSeconds: slice };
  log(`overload: ${rows.filter((r) => r.unit === 'attempts / 503').map((r) => `${r.scenario.split(', ')[1]}: ${r.lanyard} attempts, ${r.baseline} answered 503`).join('; ')}; event-loop delay p99 ${maxDelay(loopDelay.loaded)} ms loaded, ${maxDelay(loopDelay.impatient)} ms impatient, ${maxDelay(loopDelay.unloaded)} ms unloaded`);
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
