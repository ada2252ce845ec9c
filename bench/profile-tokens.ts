/**
 * V8 CPU profiles of one token scenario, Lanyard against the baseline, for finding what Lanyard
 * adds per request (docs/benchmarks.md, "Where the time goes"). Not part of `npm run bench`:
 *
 *   node --experimental-strip-types bench/profile-tokens.ts [userinfo|introspection|refresh_token|client_credentials|password_login] [lanyard|baseline]
 *
 * Starts both servers as the bench does (DATABASE_URL or embedded), warms both up alternately,
 * then profiles the main thread (servers and, embedded, PGlite) in 8 slices of BENCH_SECONDS in
 * all (default 5), the two sides alternating as in the bench (or one side alone when named).
 * Prints the main-thread CPU per request of each side and, per request, the self time by source
 * (our src/, oidc-provider, koa, pg, node internals), by function, and the inclusive time of our
 * functions and Koa's, sorted by the difference Lanyard − baseline (PROFILE_TOP rows, default
 * 40). The profiler's own cost shows as node:inspector. Lanyard's first profiled slice is written
 * to bench/results/<scenario>-lanyard.cpuprofile (Chrome DevTools opens it). Sampled wall time on
 * a shared machine: compare the two sides of one run, not runs with each other. password_login runs
 * the login suite's four browsers (bench/login.ts) instead of the token load, in their own thread
 * as the suite does (decision 0068): its figures are per login and the servers' alone.
 * PROFILE_BASELINE=engine puts Lanyard's own engine without the Koa application
 * (provider.callback()) on the baseline's side: the difference is then what createApp adds.
 */
import { Session } from 'node:inspector/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basic, browser } from './browser.ts';
import { hammer, passwordPages, baselinePasswordPage, refreshPool, startBrowsers, tokensFrom, type LoadJob } from './scenarios.ts';
import { settings, standalone, type BenchServers } from './servers.ts';

type Side = 'lanyard' | 'baseline';
const scenario = (process.argv[2] ?? 'userinfo') as 'userinfo' | 'introspection' | 'refresh_token' | 'client_credentials' | 'password_login';
/** One side alone, or (default) both interleaved. */
const only = process.argv[3] as Side | undefined;
const seconds = Number(process.env.BENCH_SECONDS ?? 5);

const { options, done } = standalone();
/** Ends what the scenario started beside the servers (the login's browsers). */
let stop = async () => {};
try {
  const s: BenchServers = await options.servers();
  if (process.env.PROFILE_BASELINE === 'engine') {
    // The "baseline" side is Lanyard's own engine without the Koa application in front
    // (provider.callback()): the difference is then exactly what createApp adds.
    const engineOnly = createServer(s.lanyard.registry.provider.callback());
    await new Promise<void>((resolve) => engineOnly.listen(0, '127.0.0.1', resolve));
    s.urls.baseline = `http://127.0.0.1:${(engineOnly.address() as AddressInfo).port}`;
    const previous = stop;
    stop = async () => { await previous(); engineOnly.closeAllConnections(); engineOnly.close(); };
  }
  const signIns: Record<Side, ReturnType<typeof passwordPages>> = {
    lanyard: passwordPages(s.lanyard.account.email, s.password),
    baseline: baselinePasswordPage(s.lanyard.account.email, s.password),
  };
  let job: (who: Side, secs: number) => LoadJob;
  /** One slice of load on `who`: what completed, and the main thread's CPU per completed request (or login). */
  let load = async (who: Side, secs: number) => {
    const rate = await hammer(job(who, secs));
    return { ok: rate.ok, cpuMsPerOp: rate.serverCpuMs };
  };
  if (scenario === 'password_login') {
    // The login suite's browsers, in their own thread (decision 0068): the profile is the servers'.
    const browsers = await startBrowsers({ urls: s.urls, client: s.clients.web, email: s.lanyard.account.email, password: s.password, nice: settings.loadNice });
    stop = () => browsers.close();
    load = async (who, secs) => {
      const cpu = process.threadCpuUsage();
      const { result } = await browsers.run({ side: who, workers: 4, seconds: secs });
      const used = process.threadCpuUsage(cpu);
      return { ok: result.done, cpuMsPerOp: result.done ? (used.user + used.system) / 1000 / result.done : 0 };
    };
  } else if (scenario === 'client_credentials') {
    job = (who, secs) => ({ url: s.urls[who], path: '/token', authorization: basic(s.clients.service.id, s.clients.service.secret), connections: settings.connections, seconds: secs, body: 'grant_type=client_credentials' });
  } else if (scenario === 'refresh_token') {
    const pools = {} as Record<Side, string[]>;
    const per = Math.max(600, Number(process.env.BENCH_REFRESH_POOL ?? 1500));
    for (const who of ['lanyard', 'baseline'] as const) pools[who] = await refreshPool(s.urls[who], s.clients.web, signIns[who], per);
    job = (who, secs) => {
      const tokens = pools[who].splice(0, secs >= seconds ? pools[who].length : 100);
      return {
        url: s.urls[who], path: '/token', authorization: basic(s.clients.web.id, s.clients.web.secret), connections: settings.connections, amount: tokens.length,
        bodies: tokens.map((token) => `grant_type=refresh_token&refresh_token=${encodeURIComponent(token)}`),
      };
    };
  } else {
    const tokens = {} as Record<Side, string>;
    for (const who of ['lanyard', 'baseline'] as const) {
      const json = await tokensFrom(browser(s.urls[who]), s.urls[who], s.clients.web, signIns[who], 'openid email profile');
      tokens[who] = json.access_token!;
    }
    job = scenario === 'userinfo'
      ? (who, secs) => ({ url: s.urls[who], path: '/me', method: 'GET', authorization: `Bearer ${tokens[who]}`, connections: settings.connections, seconds: secs })
      : (who, secs) => ({
          url: s.urls[who], path: '/token/introspection', authorization: basic(s.clients.web.id, s.clients.web.secret), connections: settings.connections, seconds: secs,
          body: `token=${encodeURIComponent(tokens[who])}&token_type_hint=access_token`,
        });
  }
  for (let warm = 0; warm < 3; warm += 1) {
    await load('lanyard', 1);
    await load('baseline', 1);
  }
  // Both sides profiled in interleaved slices (L B B L …), as the bench measures: a change of the
  // machine's speed falls on both alike. Self time per function and per source, summed per side.
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  type Tally = { ok: number; statements: number; cpuMs: number; bySource: Map<string, number>; byFunction: Map<string, number>; inclusive: Map<string, number> };
  const tally = (): Tally => ({ ok: 0, statements: 0, cpuMs: 0, bySource: new Map(), byFunction: new Map(), inclusive: new Map() });
  const sides: Record<Side, Tally> = { lanyard: tally(), baseline: tally() };
  const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us);
  const sourceOf = (url: string, name: string) => {
    if (!url) return name.startsWith('(') ? name : '(native)';
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (m) return m[1]!;
    if (url.includes('/src/')) return `src/${url.split('/src/')[1]!.split('/')[0]}`;
    if (url.includes('/bench/')) return 'bench';
    return url;
  };
  const SLICES = 8;
  const order: Side[] = ['lanyard', 'baseline', 'baseline', 'lanyard', 'lanyard', 'baseline', 'baseline', 'lanyard'];
  let saved = false;
  for (let i = 0; i < SLICES; i += 1) {
    const who = only ?? order[i]!;
    const statementsBefore = s.counts[who].statements;
    await session.post('Profiler.start');
    const rate = await load(who, seconds / (only ? SLICES : SLICES / 2));
    const { profile } = await session.post('Profiler.stop');
    if (!saved && who === 'lanyard') {
      mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
      writeFileSync(new URL(`./results/${scenario}-lanyard.cpuprofile`, import.meta.url), JSON.stringify(profile));
      saved = true;
    }
    const t = sides[who];
    t.statements += s.counts[who].statements - statementsBefore;
    t.ok += rate.ok;
    t.cpuMs += rate.cpuMsPerOp * rate.ok;
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const selfUs = new Map<number, number>();
    const deltas = profile.timeDeltas ?? [];
    (profile.samples ?? []).forEach((id, k) => selfUs.set(id, (selfUs.get(id) ?? 0) + (deltas[k] ?? 0)));
    for (const [id, us] of selfUs) {
      const { url, functionName, lineNumber } = nodes.get(id)!.callFrame;
      if (functionName === '(idle)') continue;
      add(t.bySource, sourceOf(url, functionName), us);
      add(t.byFunction, `${functionName || '(anonymous)'} ${url.replace(/^.*?(node_modules\/|\/src\/|\/bench\/)/, '$1')}:${lineNumber + 1}`, us);
      // Inclusive time of every function on the (synchronous) stack, each counted once per sample.
      const seen = new Set<string>();
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const f = nodes.get(at)!.callFrame;
        const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*?(node_modules\/|\/src\/|\/bench\/)/, '$1')}:${f.lineNumber + 1}`;
        if (!seen.has(key)) { seen.add(key); add(t.inclusive, key, us); }
      }
    }
  }
  session.disconnect();
  const top = Number(process.env.PROFILE_TOP ?? 40);
  const perReq = (t: Tally, us: number | undefined) => (t.ok ? (us ?? 0) / 1000 / t.ok : 0);
  const L = sides.lanyard;
  const B = sides.baseline;
  const table = (title: string, pick: (t: Tally) => Map<string, number>, filter: (key: string) => boolean = () => true) => {
    const keys = new Set([...pick(L).keys(), ...pick(B).keys()].filter(filter));
    const rows = [...keys].map((k) => [k, perReq(L, pick(L).get(k)), perReq(B, pick(B).get(k))] as const).sort((a, b) => Math.abs(b[1] - b[2]) - Math.abs(a[1] - a[2])).slice(0, top);
    process.stdout.write(`\n${title} (ms/request: Lanyard, baseline, difference; by difference)\n`);
    for (const [k, l, b] of rows) process.stdout.write(`  ${l.toFixed(4).padStart(8)} ${b.toFixed(4).padStart(8)} ${(l - b >= 0 ? '+' : '') + (l - b).toFixed(4)}  ${k}\n`);
  };
  process.stdout.write(`${scenario}: main-thread CPU per request Lanyard ${(L.cpuMs / (L.ok || 1)).toFixed(3)} ms (${L.ok} requests, ${(L.statements / (L.ok || 1)).toFixed(2)} SQL statements each), baseline ${(B.cpuMs / (B.ok || 1)).toFixed(3)} ms (${B.ok} requests, ${(B.statements / (B.ok || 1)).toFixed(2)} statements each)\n`);
  table('self time by source', (t) => t.bySource);
  table('self time by function', (t) => t.byFunction);
  table('inclusive time, Lanyard\'s functions and the Koa layers', (t) => t.inclusive, (k) => /\/src\/|koa/.test(k));
} finally {
  await stop();
  await done();
}
