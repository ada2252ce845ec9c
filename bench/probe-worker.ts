/**
 * Latency probes in a worker thread (bench/overload.ts): each probe sends one request every
 * 1/rate seconds, open loop (the next is sent on time whether or not the last has answered), over
 * keep-alive connections, and records each answer's latency with sub-millisecond precision.
 * Answers with one ProbeResult per probe.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

export interface Probe {
  name: string;
  url: string;
  path: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  /** Requests per second. */
  rate: number;
}

export interface ProbeResult {
  name: string;
  /** Latency of every 2xx answer, ms. */
  latencies: number[];
  non2xx: number;
  errors: number;
}

const { probes, seconds } = workerData as { probes: Probe[]; seconds: number };

async function runProbe(probe: Probe): Promise<ProbeResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const target = new URL(probe.url);
  const result: ProbeResult = { name: probe.name, latencies: [], non2xx: 0, errors: 0 };
  const pending: Promise<void>[] = [];
  const started = performance.now();
  const interval = 1000 / probe.rate;
  for (let i = 0; ; i += 1) {
    const due = started + i * interval;
    if (due - started >= seconds * 1000) break;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(new Promise<void>((resolve) => {
      const sent = performance.now();
      const req = request({ agent, host: target.hostname, port: target.port, path: probe.path, method: probe.method, headers: probe.headers }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode && res.statusCode < 300) result.latencies.push(performance.now() - sent);
          else result.non2xx += 1;
          resolve();
        });
      });
      req.on('error', () => { result.errors += 1; resolve(); });
      req.end(probe.body);
    }));
  }
  await Promise.all(pending);
  agent.destroy();
  return result;
}

parentPort!.postMessage(await Promise.all(probes.map(runProbe)));
