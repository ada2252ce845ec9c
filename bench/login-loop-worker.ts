/**
 * The login suite's browsers (bench/login.ts), in a worker thread of their own: the suite sends
 * one message per slice — which server, how many concurrent browsers, how long — and this thread
 * runs complete password logins back to back (scenarios.ts → loop, passwordLogin) and answers
 * with what completed, the HTTP requests the browsers made and this thread's own CPU time.
 *
 * Why a thread (decision 0068): run on the servers' event loop, the browsers' work (requests,
 * pages read for their CSRF token) was counted as the server's and delayed it, one browser request
 * at a time, as no deployment's browser does. The token suites' and the overload suite's load
 * generators already run in worker threads; this one runs at the same nice value as the overload
 * suite's browsers (BENCH_LOAD_NICE), so that it takes the CPU the hashing threads would (the two
 * are at the same priority) and not the event loop's.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { setPriority } from 'node:os';
import { baselinePasswordPage, loop, passwordLogin, passwordPages, type LoopResult, type WebClient } from './scenarios.ts';

export interface LoginLoopSetup {
  urls: Record<'lanyard' | 'baseline', string>;
  client: WebClient;
  email: string;
  password: string;
  /** The nice value of this thread (0: the process's). */
  nice: number;
}

/** One slice: `workers` browsers logging in on `side` for `seconds`. */
export interface LoginLoopJob {
  side: 'lanyard' | 'baseline';
  workers: number;
  seconds: number;
}

export interface LoginLoopAnswer {
  result: LoopResult;
  /** HTTP requests the browsers made. */
  trips: number;
  /** CPU time of this thread (the browsers), ms. */
  generatorCpuMs: number;
}

const setup = workerData as LoginLoopSetup;
// On Linux a thread has its own nice value; setpriority(PRIO_PROCESS, 0) from this thread changes
// this thread alone (setpriority(2)).
if (setup.nice > 0 && process.platform === 'linux') setPriority(0, setup.nice);
const signIns = { lanyard: passwordPages(setup.email, setup.password), baseline: baselinePasswordPage(setup.email, setup.password) };

parentPort!.on('message', async (job: LoginLoopJob) => {
  const trips = { count: 0 };
  const cpu = process.threadCpuUsage();
  try {
    const result = await loop(job.workers, job.seconds, passwordLogin(setup.urls[job.side], setup.client, signIns[job.side], trips));
    const used = process.threadCpuUsage(cpu);
    const answer: LoginLoopAnswer = { result, trips: trips.count, generatorCpuMs: (used.user + used.system) / 1000 };
    parentPort!.postMessage(answer);
  } catch (err) {
    // Every login of the slice failed: the suite reports it as its error.
    parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
});
parentPort!.postMessage('ready');
