/**
 * One autocannon run in a worker thread, so that the load generator has an event loop of its
 * own and the server's main thread only serves (see docs/benchmarks.md). Started by
 * scenarios.ts → hammer(); answers with one LoadResult message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import type { LoadJob, LoadResult } from './scenarios.ts';

const job = workerData as LoadJob;
const bodies = job.bodies;
let next = 0;
let ok = 0;
let answered = 0;
let last = 0;
const elu = performance.eventLoopUtilization();
const started = performance.now();
// The main thread measures how busy the servers were between these two messages; an `amount`
// run is drained at its last answer, not at autocannon's next 1 s tick when the promise resolves.
parentPort!.postMessage({ type: 'start' });
let drained = false;
const drain = () => {
  if (!drained) parentPort!.postMessage({ type: 'drained' });
  drained = true;
};

const result = await autocannon({
  url: job.url,
  connections: job.connections,
  ...(job.amount ? { amount: job.amount } : { duration: job.seconds }),
  requests: [{
    method: 'POST',
    path: job.path,
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: job.authorization },
    // Each request takes the next body (single-use refresh tokens), or the one fixed body.
    ...(bodies ? { setupRequest: (req) => ({ ...req, body: bodies[next++] ?? 'grant_type=refresh_token&refresh_token=pool-exhausted' }) } : { body: job.body }),
    onResponse: (status) => {
      if (status === 200) {
        ok += 1;
        last = performance.now();
      }
      answered += 1;
      if (job.amount && answered >= job.amount) drain();
    },
  }],
});

drain();
const message: LoadResult = {
  type: 'result',
  ok,
  // Timed to the last successful response: an `amount` run only ends on autocannon's 1 s tick.
  seconds: ((last || performance.now()) - started) / 1000,
  non2xx: result.non2xx,
  errors: result.errors + result.timeouts,
  generatorBusy: performance.eventLoopUtilization(elu).utilization,
};
parentPort!.postMessage(message);
