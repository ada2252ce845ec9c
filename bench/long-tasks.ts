/**
 * What keeps the event loop busy under a password-login load (bench/overload.ts's patient load:
 * 16 browsers in their worker thread), for finding the long tasks behind the overload suite's
 * loaded p99, and what a login allocates. Not part of `npm run bench`:
 *
 *   node --max-semi-space-size=8 --experimental-strip-types bench/long-tasks.ts
 *   ALLOC=1 node --max-semi-space-size=8 --experimental-strip-types bench/long-tasks.ts
 *
 * Without ALLOC: profiles the main thread (the servers) at a 100 µs sampling interval for
 * BENCH_SECONDS (default 8), splits the samples into busy stretches (runs of samples that are not
 * idle) and prints how many stretches exceeded 1, 2, 4, 8 and 16 ms and, for those longer than
 * LONG_MS (default 3), their self time per login by source and by function. With ALLOC=1: V8's
 * sampling heap profiler (every 1 KB, garbage included) instead, in KB a login by source, by
 * function and by the nearest frame of src/. Sampled figures: compare runs of one machine.
 */
import { Session } from 'node:inspector/promises';
import { inWorker } from './scenarios.ts';
import { settings, standalone } from './servers.ts';
import type { LoginLoad, LoginLoadResult } from './login-load-worker.ts';

const LONG_MS = Number(process.env.LONG_MS ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 8);

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface HeapNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: HeapNode[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

const source = (url: string, name: string): string => {
  if (!url) return name.startsWith('(') ? name : '(native)';
  if (url.includes('/src/')) return 'src/' + url.split('/src/')[1]!.split('/')[0];
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  return url;
};

const { options, done } = standalone();
try {
  const s = await options.servers();
  const hashQueue = s.lanyard.config.passwordHashConcurrency;
  const emails: string[] = [];
  for (let i = 0; i < 16; i += 1) {
    const account = await s.lanyard.registry.accounts.create({ email: `long-${i}@example.com`, password: s.password, name: `Long ${i}`, emailVerified: true });
    emails.push(account.email);
  }
  const loginLoad = (secs: number): LoginLoad => ({ url: s.urls.lanyard, client: s.clients.web, accounts: emails, password: s.password, workers: 2 * hashQueue, seconds: secs, nice: 10, honourRetryAfter: true });
  await inWorker<LoginLoadResult>('./login-load-worker.ts', loginLoad(settings.warmupSeconds));

  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  const load = inWorker<LoginLoadResult>('./login-load-worker.ts', loginLoad(seconds + 1));
  await new Promise((r) => setTimeout(r, 1000));
  if (process.env.ALLOC) {
    // Sampled allocations, garbage included: what each login allocates, by function.
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const { profile: heap } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: HeapNode } };
    const result = await load;
    session.disconnect();
    const perLogin = result.completed * (seconds / (seconds + 1));
    const bySrc = new Map<string, number>();
    const byFn = new Map<string, number>();
    const byOurs = new Map<string, number>();
    let total = 0;
    const walk = (node: HeapNode, ours: string | undefined) => {
      const f = node.callFrame;
      const here = f.url.includes('/src/') ? `${f.functionName || '(anonymous)'} ${f.url.split('/src/')[1]}:${f.lineNumber + 1}` : ours;
      total += node.selfSize;
      const src = source(f.url, f.functionName);
      bySrc.set(src, (bySrc.get(src) ?? 0) + node.selfSize);
      const key = `${f.functionName || '(anonymous)'} ${src}:${f.lineNumber + 1}`;
      byFn.set(key, (byFn.get(key) ?? 0) + node.selfSize);
      if (here) byOurs.set(here, (byOurs.get(here) ?? 0) + node.selfSize);
      for (const c of node.children) walk(c, here);
    };
    walk(heap.head, undefined);
    process.stdout.write(`${result.completed} logins; allocated ${(total / perLogin / 1024).toFixed(0)} KB a login (sampled)\n`);
    const topKB = (m: Map<string, number>, n: number, title: string) => {
      process.stdout.write(`${title} (KB a login):\n`);
      for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) process.stdout.write(`  ${(v / perLogin / 1024).toFixed(1).padStart(8)}  ${k}\n`);
    };
    topKB(bySrc, 20, 'by source');
    topKB(byFn, 40, 'by function (self)');
    topKB(byOurs, 40, 'by nearest src/ frame');
    process.exit(0);
  }
  await session.post('Profiler.start');
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
  const result = await load;
  session.disconnect();

  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const idle = (id: number) => byId.get(id)!.callFrame.functionName === '(idle)';

  // Stretches of consecutive non-idle samples. A sample's time is the delta to the next sample.
  type Stretch = { ms: number; samples: { id: number; ms: number }[] };
  const stretches: Stretch[] = [];
  let current: Stretch | undefined;
  for (let i = 0; i < profile.samples.length - 1; i += 1) {
    const id = profile.samples[i]!;
    const ms = profile.timeDeltas[i + 1]! / 1000;
    if (idle(id)) {
      if (current) stretches.push(current);
      current = undefined;
      continue;
    }
    current ??= { ms: 0, samples: [] };
    current.ms += ms;
    current.samples.push({ id, ms });
  }
  if (current) stretches.push(current);

  const busy = stretches.reduce((a, st) => a + st.ms, 0);
  process.stdout.write(`${result.completed} logins in ${seconds + 1} s (${JSON.stringify(result.statuses)}); profiled ${seconds} s: busy ${busy.toFixed(0)} ms in ${stretches.length} stretches\n`);
  for (const limit of [1, 2, 4, 8, 16]) {
    const over = stretches.filter((st) => st.ms > limit);
    process.stdout.write(`  > ${limit} ms: ${over.length} stretches, ${over.reduce((a, st) => a + st.ms, 0).toFixed(0)} ms\n`);
  }
  const long = stretches.filter((st) => st.ms > LONG_MS);
  const bySource = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const byRoot = new Map<string, number>();
  for (const st of long) {
    for (const { id, ms } of st.samples) {
      const f = byId.get(id)!.callFrame;
      const src = source(f.url, f.functionName);
      bySource.set(src, (bySource.get(src) ?? 0) + ms);
      const key = `${f.functionName || '(anonymous)'} ${src}:${f.lineNumber + 1}`;
      byFunction.set(key, (byFunction.get(key) ?? 0) + ms);
      // The frames our code is under, nearest first: which of our functions the time is spent in.
      let at: number | undefined = id;
      while (at !== undefined) {
        const cf = byId.get(at)!.callFrame;
        if (cf.url.includes('/src/')) {
          const k = `${cf.functionName || '(anonymous)'} ${cf.url.split('/src/')[1]}:${cf.lineNumber + 1}`;
          byRoot.set(k, (byRoot.get(k) ?? 0) + ms);
          break;
        }
        at = parent.get(at);
      }
    }
  }
  const top = (m: Map<string, number>, n: number, title: string) => {
    process.stdout.write(`${title} (ms in stretches > ${LONG_MS} ms, per login):\n`);
    for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) process.stdout.write(`  ${(v / result.completed).toFixed(3).padStart(8)}  ${v.toFixed(1).padStart(8)}  ${k}\n`);
  };
  top(bySource, 20, 'by source');
  top(byFunction, 40, 'by function (self)');
  top(byRoot, 30, 'by nearest src/ frame');
  const longest = [...long].sort((a, b) => b.ms - a.ms).slice(0, 5);
  for (const st of longest) {
    const m = new Map<string, number>();
    for (const { id, ms } of st.samples) {
      const f = byId.get(id)!.callFrame;
      const k = source(f.url, f.functionName);
      m.set(k, (m.get(k) ?? 0) + ms);
    }
    process.stdout.write(`stretch ${st.ms.toFixed(1)} ms: ${[...m].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}\n`);
  }
} finally {
  await done();
}
