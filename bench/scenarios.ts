import { Worker } from 'node:worker_threads';
import type { LoginLoopAnswer, LoginLoopJob, LoginLoopSetup } from './login-loop-worker.ts';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import * as argon2 from 'argon2';
import { basic, browser, csrfFrom, form, locationOf, pkce, type Browser } from './browser.ts';

/** What one autocannon run in the load worker is asked to do. */
export interface LoadJob {
  url: string;
  path: string;
  /** POST (default, a form body) or GET (no body). */
  method?: 'GET' | 'POST';
  /** The Authorization header, if any. */
  authorization?: string;
  connections: number;
  /** At most this many requests per second in all (autocannon's overallRate): a probe, not a load. */
  rate?: number;
  /** Run for this long… */
  seconds?: number;
  /** …or until this many requests were sent (a pool of single-use bodies). */
  amount?: number;
  body?: string;
  /** One body per request, in order (single-use refresh tokens). */
  bodies?: string[];
}

/** The worker's answer. */
export interface LoadResult {
  type: 'result';
  ok: number;
  seconds: number;
  non2xx: number;
  errors: number;
  /** Share of the time the load generator's own event loop was busy. */
  generatorBusy: number;
  /** Latency percentiles of all answers, ms (autocannon's, 1 ms resolution). */
  latency: Latency;
}

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Answers the percentiles are taken over. */
  samples: number;
}

export interface Rate {
  /** 200 answers per second. */
  rps: number;
  ok: number;
  seconds: number;
  non2xx: number;
  errors: number;
  /** Share of the time the servers' (main) event loop was busy: ~1 means the server was the bottleneck. */
  serverBusy: number;
  /**
   * CPU time of the main thread (the servers, and PGlite when embedded) per 200 answer, ms. Unlike
   * a rate it hardly moves when other processes take turns on the machine.
   */
  serverCpuMs: number;
  generatorBusy: number;
  latency: Latency;
}

/**
 * Runs autocannon in a worker thread against `job.url`. The servers and the embedded database
 * keep the main thread to themselves; the load generator runs beside them on the second core.
 * Only 200 answers count as done; non-2xx answers and socket errors are reported.
 */
export async function hammer(job: LoadJob): Promise<Rate> {
  const worker = new Worker(new URL('./load-worker.ts', import.meta.url), { workerData: job });
  let elu = performance.eventLoopUtilization();
  let cpu = process.threadCpuUsage();
  let serverBusy = 0;
  let serverCpu = 0;
  const result = await new Promise<LoadResult>((resolve, reject) => {
    worker.on('message', (message: { type: 'start' } | { type: 'drained' } | LoadResult) => {
      if (message.type === 'start') {
        elu = performance.eventLoopUtilization();
        cpu = process.threadCpuUsage();
      } else if (message.type === 'drained') {
        serverBusy = performance.eventLoopUtilization(elu).utilization;
        const used = process.threadCpuUsage(cpu);
        serverCpu = (used.user + used.system) / 1000;
      } else {
        resolve(message);
      }
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`load worker exited with ${code}`)));
  });
  await worker.terminate();
  return {
    rps: result.ok / result.seconds,
    ok: result.ok,
    seconds: result.seconds,
    non2xx: result.non2xx,
    errors: result.errors,
    serverBusy,
    serverCpuMs: result.ok ? serverCpu / result.ok : 0,
    generatorBusy: result.generatorBusy,
    latency: result.latency,
  };
}

/** Several runs against one server as one: totals over total time, busy shares weighted by time. */
export function combineRates(runs: Rate[]): Rate {
  const seconds = runs.reduce((sum, r) => sum + r.seconds, 0);
  const ok = runs.reduce((sum, r) => sum + r.ok, 0);
  const weighted = (pick: (r: Rate) => number) => runs.reduce((sum, r) => sum + pick(r) * r.seconds, 0) / seconds;
  return {
    rps: ok / seconds,
    ok,
    seconds,
    non2xx: runs.reduce((sum, r) => sum + r.non2xx, 0),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
    serverBusy: weighted((r) => r.serverBusy),
    serverCpuMs: runs.reduce((sum, r) => sum + r.serverCpuMs * r.ok, 0) / ok,
    generatorBusy: weighted((r) => r.generatorBusy),
    // Percentiles do not add up: the worst slice's, a conservative figure (only probes read them).
    latency: runs.reduce((worst, r) => (r.latency.p99 > worst.p99 ? r.latency : worst), runs[0]!.latency),
  };
}

/**
 * Runs `a` and `b` in `slices` turns each, ordered a b b a a b b a …: drift in the machine's
 * speed (other processes, JIT warming, heap growth) falls on both sides alike, and a burst of
 * outside load hits one slice of each side rather than one whole side.
 */
export async function interleave<T>(slices: number, a: (slice: number) => Promise<T>, b: (slice: number) => Promise<T>): Promise<[T[], T[]]> {
  const as: T[] = [];
  const bs: T[] = [];
  for (let slice = 0; slice < slices; slice += 1) {
    if (slice % 2 === 0) {
      as.push(await a(slice));
      bs.push(await b(slice));
    } else {
      bs.push(await b(slice));
      as.push(await a(slice));
    }
  }
  return [as, bs];
}

/**
 * Runs each of `runs` in `slices` turns, rotating which goes first (a b c, b c a, c a b, …), so
 * that drift falls on all alike. Returns each one's results in its own list.
 */
export async function rotate<T>(slices: number, runs: Array<(slice: number) => Promise<T>>): Promise<T[][]> {
  const results: T[][] = runs.map(() => []);
  for (let slice = 0; slice < slices; slice += 1) {
    for (let k = 0; k < runs.length; k += 1) {
      const i = (slice + k) % runs.length;
      results[i]!.push(await runs[i]!(slice));
    }
  }
  return results;
}

/** `items` cut into `slices` consecutive parts of (nearly) equal size. */
export function slicesOf<T>(items: T[], slices: number): T[][] {
  return Array.from({ length: slices }, (_, i) => items.slice(Math.floor((i * items.length) / slices), Math.floor(((i + 1) * items.length) / slices)));
}

export interface WebClient {
  id: string;
  secret: string;
  redirectUri: string;
}

/** How a server's login interaction is completed by a browser sitting on its page. */
export type SignIn = (go: Browser, uid: string, page: Response) => Promise<Response>;

/** Lanyard's pages: the identifier form, then the password form it leads to (each with its CSRF token). */
export function passwordPages(email: string, password: string): SignIn {
  return async (go, uid, page) => {
    const identify = await go(`/interaction/${uid}/identify`, form({ _csrf: csrfFrom(await page.text()), email }));
    await identify.body?.cancel();
    if (identify.status !== 303) throw new Error(`identify: ${identify.status}`);
    // The password page is a GET of its own (Post/Redirect/Get), as a browser follows it.
    const passwordPage = await go(identify.headers.get('location')!);
    if (passwordPage.status !== 200) throw new Error(`password page: ${passwordPage.status}`);
    return go(`/interaction/${uid}/password`, form({ _csrf: csrfFrom(await passwordPage.text()), email, password }));
  };
}

/**
 * One authorization request followed as a browser would, through the login pages when the
 * server shows them, until the redirect to the client. Returns the authorization code.
 */
export async function authorize(go: Browser, base: string, client: WebClient, challenge: string, signIn: SignIn, scope = 'openid'): Promise<string> {
  const query = new URLSearchParams({ client_id: client.id, response_type: 'code', scope, redirect_uri: client.redirectUri, code_challenge: challenge, code_challenge_method: 'S256' });
  let location = `/auth?${query}`;
  for (let step = 0; step < 10; step += 1) {
    if (location.startsWith(client.redirectUri)) {
      const url = new URL(location);
      const code = url.searchParams.get('code');
      if (!code) throw new Error(`authorization failed: ${url.search}`);
      return code;
    }
    let res = await go(location);
    if (res.status === 200) {
      const uid = /^\/interaction\/([^/?]+)/.exec(location)?.[1];
      if (!uid) throw new Error(`unexpected page at ${location}`);
      res = await signIn(go, uid, res);
    } else {
      await res.body?.cancel();
    }
    if (res.status !== 302 && res.status !== 303) throw new Error(`${location}: ${res.status} ${(await res.text()).slice(0, 200)}`);
    location = locationOf(res, base);
  }
  throw new Error('authorization did not finish within 10 steps');
}

/** The token response of one complete authorization code + PKCE flow in `go`'s session. */
export async function tokensFrom(go: Browser, base: string, client: WebClient, signIn: SignIn, scope = 'openid'): Promise<{ access_token?: string; refresh_token?: string }> {
  const { verifier, challenge } = pkce();
  const code = await authorize(go, base, client, challenge, signIn, scope);
  const res = await fetch(new URL('/token', base), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.id, client.secret) },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: client.redirectUri, code_verifier: verifier }).toString(),
  });
  return (await res.json()) as { access_token?: string; refresh_token?: string };
}

/** A refresh token from one complete authorization code + PKCE flow in `go`'s session. */
async function refreshTokenFrom(go: Browser, base: string, client: WebClient, signIn: SignIn): Promise<string> {
  const json = await tokensFrom(go, base, client, signIn);
  if (!json.refresh_token) throw new Error(`no refresh token from ${base}: ${JSON.stringify(json)}`);
  return json.refresh_token;
}

/**
 * `count` refresh tokens, each from a real authorization code + PKCE flow over HTTP. The first
 * flow signs a browser session in (on Lanyard through the password pages); the others reuse that
 * session as a signed-in user's browser would, `concurrency` at a time.
 */
export async function refreshPool(base: string, client: WebClient, signIn: SignIn, count: number, concurrency = 8): Promise<string[]> {
  const go = browser(base);
  const tokens = [await refreshTokenFrom(go, base, client, signIn)];
  let started = 1;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (started < count) {
      started += 1;
      tokens.push(await refreshTokenFrom(go, base, client, signIn));
    }
  }));
  return tokens;
}

export interface LoopResult {
  /** Completed operations per second. */
  perSecond: number;
  done: number;
  failed: number;
  seconds: number;
  /** Process CPU time in all, ms. */
  cpuMs: number;
  /** Process CPU time (all threads: event loop, argon2's libuv threads) per completed operation, ms. */
  cpuMsPerOp: number;
  /** Main-thread CPU time per completed operation, ms: HTTP, the app, PGlite and the load generator, argon2 excluded. */
  mainCpuMsPerOp: number;
  /** Share of the time the main event loop was busy. */
  mainBusy: number;
}

/** `workers` concurrent loops running `work` back to back for `seconds`. */
export async function loop(workers: number, seconds: number, work: () => Promise<void>): Promise<LoopResult> {
  const cpu = process.cpuUsage();
  const mainCpu = process.threadCpuUsage();
  const elu = performance.eventLoopUtilization();
  const started = performance.now();
  const until = started + seconds * 1000;
  let done = 0;
  let failed = 0;
  let firstError: unknown;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (performance.now() < until) {
      try {
        await work();
        done += 1;
      } catch (err) {
        failed += 1;
        firstError ??= err;
      }
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const usedMain = process.threadCpuUsage(mainCpu);
  if (failed && !done) throw firstError;
  const cpuMs = (used.user + used.system) / 1000;
  const mainMs = (usedMain.user + usedMain.system) / 1000;
  return {
    perSecond: done / elapsed,
    done,
    failed,
    seconds: elapsed,
    cpuMs,
    cpuMsPerOp: done ? cpuMs / done : 0,
    mainCpuMsPerOp: done ? mainMs / done : 0,
    mainBusy: performance.eventLoopUtilization(elu).utilization,
  };
}

export function combineLoops(runs: LoopResult[]): LoopResult {
  const sum = (pick: (r: LoopResult) => number) => runs.reduce((total, r) => total + pick(r), 0);
  const seconds = sum((r) => r.seconds);
  const done = sum((r) => r.done);
  const cpuMs = sum((r) => r.cpuMs);
  return {
    perSecond: done / seconds,
    done,
    failed: sum((r) => r.failed),
    seconds,
    cpuMs,
    cpuMsPerOp: done ? cpuMs / done : 0,
    mainCpuMsPerOp: done ? sum((r) => r.mainCpuMsPerOp * r.done) / done : 0,
    mainBusy: sum((r) => r.mainBusy * r.seconds) / seconds,
  };
}

/** The baseline's one page (bench/baseline.ts with a password hash): the password form, then the password. */
export function baselinePasswordPage(email: string, password: string): SignIn {
  return async (go, uid, page) => {
    await page.body?.cancel();
    return go(`/interaction/${uid}/login`, form({ email, password }));
  };
}

/**
 * One complete password login in a fresh browser: /auth → login page(s) → password → back to
 * the client with a code. `trips`, when given, counts the HTTP requests the browser made.
 */
export function passwordLogin(base: string, client: WebClient, signIn: SignIn, trips?: { count: number }): () => Promise<void> {
  return async () => {
    const go = browser(base);
    const counted: Browser = trips ? (path, init) => { trips.count += 1; return go(path, init); } : go;
    await authorize(counted, base, client, pkce().challenge, signIn);
  };
}

/** argon2id verification of `password` against a hash made at `params`: the ceiling of password logins. */
export async function argon2Verify(params: { memoryKiB: number; timeCost: number; parallelism: number }, password: string): Promise<() => Promise<void>> {
  const hash = await argon2.hash(password, { type: argon2.argon2id, memoryCost: params.memoryKiB, timeCost: params.timeCost, parallelism: params.parallelism });
  return async () => {
    if (!(await argon2.verify(hash, password))) throw new Error('argon2 verification failed');
  };
}

/**
 * CPU time the whole machine has spent busy, ms (Linux /proc/stat; undefined elsewhere). Minus
 * this process's own CPU time it tells how much other processes took during a run.
 */
export function machineBusyMs(): number | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal, in USER_HZ (100 per second on Linux)
    const busy = fields[0]! + fields[1]! + fields[2]! + fields[5]! + fields[6]! + fields[7]!;
    return Number.isFinite(busy) ? busy * 10 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU milliseconds this process and its ended children used (/proc/self/stat utime, stime,
 * cutime, cstime): the `isolated` suite's servers are child processes of the run, not "other
 * processes". Undefined where /proc is not there.
 */
export function ownAndChildrenBusyMs(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // After the command name in parentheses (which may hold spaces) come fields 3 onwards.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    const ticks = fields[11]! + fields[12]! + fields[13]! + fields[14]!;
    return Number.isFinite(ticks) ? ticks * 10 : undefined;
  } catch {
    return undefined;
  }
}

/** What this process's threads do, by the names Node and V8 give them on Linux. */
const THREAD_KINDS: Record<string, ThreadKind> = { MainThread: 'main', V8Worker: 'v8', 'libuv-worker': 'pool', WorkerThread: 'workers' };
/**
 * main: the event loop (servers, embedded PGlite); v8: V8's helper threads (parallel and
 * concurrent garbage collection, background JIT compilation); pool: libuv's thread pool (argon2,
 * WebCrypto signing, fs); workers: worker threads (the load generators); other: the rest.
 */
export type ThreadKind = 'main' | 'v8' | 'pool' | 'workers' | 'other';

/**
 * CPU milliseconds this process's threads have used so far, summed by kind (/proc/self/task/<tid>/stat,
 * utime + stime, 10 ms ticks: read over slices of seconds). Undefined where /proc is not there.
 */
export function threadCpuByKind(): Record<ThreadKind, number> | undefined {
  const totals: Record<ThreadKind, number> = { main: 0, v8: 0, pool: 0, workers: 0, other: 0 };
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return undefined;
  }
  for (const tid of tasks) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // a thread that ended meanwhile
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    totals[THREAD_KINDS[name] ?? 'other'] += (Number(fields[11]) + Number(fields[12])) * 10;
  }
  return totals;
}

/** `after − before`, kind by kind. */
export function threadCpuSince(before: Record<ThreadKind, number> | undefined): Record<ThreadKind, number> | undefined {
  const after = threadCpuByKind();
  if (!before || !after) return undefined;
  return Object.fromEntries(Object.entries(after).map(([kind, ms]) => [kind, ms - before[kind as ThreadKind]])) as Record<ThreadKind, number>;
}

/** The browsers' worker thread (bench/login-loop-worker.ts): one slice at a time. */
export async function startBrowsers(setup: LoginLoopSetup): Promise<{ run(job: LoginLoopJob): Promise<LoginLoopAnswer>; close(): Promise<void> }> {
  const worker = new Worker(new URL('./login-loop-worker.ts', import.meta.url), { workerData: setup });
  let failed: ((err: Error) => void) | undefined;
  worker.on('error', (err) => failed?.(err));
  await new Promise<void>((resolve, reject) => {
    failed = reject;
    worker.once('message', () => resolve());
  });
  return {
    run: (job) => new Promise<LoginLoopAnswer>((resolve, reject) => {
      failed = reject;
      worker.once('message', (answer: LoginLoopAnswer | { error: string }) => ('error' in answer ? reject(new Error(answer.error)) : resolve(answer)));
      worker.postMessage(job);
    }),
    close: async () => {
      await worker.terminate();
    },
  };
}

/** Runs `module` (relative to bench/) in a worker thread with `data`; resolves with its one message. */
export function inWorker<T>(module: string, data: unknown): Promise<T> {
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

/**
 * The decomposition tools' measurement (bench/decompose*.ts): three warm-up runs of every variant
 * in turn, then `rounds` rounds, alternately forwards and backwards, so that a change of the
 * machine's speed falls on all of them alike. Returns each variant's runs, by name.
 */
export async function interleavedRounds<V extends { name: string }>(variants: V[], run: (variant: V) => Promise<Rate>, rounds: number): Promise<Map<string, Rate[]>> {
  for (let warm = 0; warm < 3; warm += 1) for (const v of variants) await run(v);
  const rates = new Map<string, Rate[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < rounds; round += 1) {
    for (const v of round % 2 ? [...variants].reverse() : variants) {
      const rate = await run(v);
      if (rate.non2xx || rate.errors) process.stdout.write(`${v.name}: ${rate.non2xx} non-2xx, ${rate.errors} errors\n`);
      rates.get(v.name)!.push(rate);
    }
  }
  return rates;
}

/** Prints `title`, then one row per variant: its rate, its main-thread CPU per request and the step from the row before. */
export function printSteps(title: string, variants: Array<{ name: string }>, rates: Map<string, Rate[]>): void {
  process.stdout.write(`\n${title}\n| step | req/s | main-thread CPU ms/request | Δ vs previous step |\n|---|---|---|---|\n`);
  let previous: number | undefined;
  for (const v of variants) {
    const all = combineRates(rates.get(v.name)!);
    const delta = previous === undefined ? '' : `${all.serverCpuMs - previous >= 0 ? '+' : ''}${(all.serverCpuMs - previous).toFixed(3)}`;
    process.stdout.write(`| ${v.name} | ${Math.round(all.rps)} | ${all.serverCpuMs.toFixed(3)} | ${delta} |\n`);
    previous = all.serverCpuMs;
  }
}
