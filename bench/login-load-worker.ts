/**
 * Password logins as a load, in a worker thread (bench/overload.ts): `workers` browsers, each
 * doing complete logins back to back for `seconds` (Lanyard's pages: identifier, then password),
 * spread over the given accounts. Answers with how the password step was answered.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { setPriority } from 'node:os';
import { browser, csrfFrom, form } from './browser.ts';
import { authorize, passwordPages, type SignIn, type WebClient } from './scenarios.ts';
import { pkce } from './browser.ts';

export interface LoginLoad {
  url: string;
  client: WebClient;
  accounts: string[];
  password: string;
  workers: number;
  seconds: number;
  /** The nice value of this load generator's thread (0: as the process). */
  nice: number;
  /**
   * A browser told 503 with Retry-After waits that long (RFC 9110 §10.2.3) and sends the busy
   * page's password form again, as a person shown it does; false: it starts a new login at once,
   * as an impatient script would.
   */
  honourRetryAfter: boolean;
}

export interface LoginLoadResult {
  /** Password steps answered, by HTTP status (303: signed in; 503: the hashing queue was full). */
  statuses: Record<string, number>;
  /** Logins that reached the client with a code. */
  completed: number;
  /** Attempts that failed before the password step (or after it), by message. */
  failures: number;
  seconds: number;
}

const job = workerData as LoginLoad;
// In a deployment the browsers are other machines: the load's own CPU (16 browsers parsing pages)
// should not come out of the server's share. On Linux a thread has its own nice value, and
// setpriority(PRIO_PROCESS, 0) from this thread changes this thread alone (setpriority(2)).
if (job.nice > 0 && process.platform === 'linux') setPriority(0, job.nice);
const statuses: Record<string, number> = {};
let completed = 0;
let failures = 0;
const started = performance.now();
const until = started + job.seconds * 1000;

await Promise.all(Array.from({ length: job.workers }, async (_, worker) => {
  for (let n = 0; performance.now() < until; n += 1) {
    const email = job.accounts[(worker + n * job.workers) % job.accounts.length]!;
    const pages = passwordPages(email, job.password);
    const signIn: SignIn = async (go, uid, page) => {
      let res = await pages(go, uid, page);
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      // A patient browser told 503 waits the Retry-After and sends the password form of the busy
      // page again (decision 0061), as the person in front of it would.
      while (res.status === 503 && job.honourRetryAfter && performance.now() < until) {
        const wait = (Number(res.headers.get('retry-after')) || 1) * 1000;
        const busyPage = await res.text();
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(wait, until - performance.now()))));
        // Out of time: the busy answer stands (its body, read above, handed on for the message).
        if (performance.now() >= until) return new Response(busyPage, { status: 503 });
        res = await go(`/interaction/${uid}/password`, form({ _csrf: csrfFrom(busyPage), email, password: job.password }));
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
      return res;
    };
    try {
      await authorize(browser(job.url), job.url, job.client, pkce().challenge, signIn);
      completed += 1;
    } catch {
      failures += 1;
    }
  }
}));

const result: LoginLoadResult = { statuses, completed, failures, seconds: (performance.now() - started) / 1000 };
parentPort!.postMessage(result);
