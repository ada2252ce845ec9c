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

const method = job.method ?? 'POST';
const headers: Record<string, string> = method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {};
if (job.authorization) headers.authorization = job.authorization;
const result = await autocannon({
  url: job.url,
  connections: job.connections,
  ...(job.amount ? { amount: job.amount } : { duration: job.seconds }),
  ...(job.rate ? { overallRate: job.rate } : {}),
  requests: [{
    method,
    path: job.path,
    headers,
    // Each request takes the next body (single-use refresh tokens), or the one fixed body.
    ...(bodies ? { setupRequest: (req) => ({ ...req, body: bodies[next++] ?? 'grant_type=refresh_token&refresh_token=pool-exhausted' }) } : method === 'POST' ? { body: job.body } : {}),
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
// In a worker thread autocannon leaves its histograms encoded (for a parent to merge): decode them.
const latency = (result.latency ?? (autocannon as unknown as { aggregateResult(r: unknown[], o: unknown): { latency: unknown } }).aggregateResult([result], { url: job.url }).latency) as unknown as { p50: number; p90: number; p99: number; max: number; totalCount?: number };
const message: LoadResult = {
  type: 'result',
  ok,
  // Timed to the last successful response: an `amount` run only ends on autocannon's 1 s tick.
  seconds: ((last || performance.now()) - started) / 1000,
  non2xx: result.non2xx,
  errors: result.errors + result.timeouts,
  generatorBusy: performance.eventLoopUtilization(elu).utilization,
  latency: { p50: latency.p50, p90: latency.p90, p99: latency.p99, max: latency.max, samples: latency.totalCount ?? 0 },
};
parentPort!.postMessage(message);
