/**
 * Throughput of one Lanyard instance against three, on one machine, through the deployment of
 * bench/cluster.sh (docs/scaling.md). Both sides go through the same HAProxy, PgBouncer and
 * PostgreSQL; "one instance" is the same cluster with two instances put in maintenance through
 * HAProxy's runtime API, so the only difference is the number of Lanyard processes.
 *
 *   bench/cluster.sh up && node --experimental-strip-types bench/cluster-throughput.ts; bench/cluster.sh down
 *
 * Token endpoint: client_credentials with autocannon (bench/load-worker.ts), 10 s per side.
 * Password logins: complete logins (/auth → identifier → password → code) in 8 concurrent loops,
 * as `npm run bench` drives them (autocannon cannot follow a multi-page flow), 10 s per side.
 * Each side runs in two 5 s slices ordered a b b a, so drift falls on both alike.
 * CLUSTER_SECONDS changes the time per side.
 */
import { connect } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { basic } from './browser.ts';
import { loadConfig } from '../src/config/load.ts';
import { createRegistry } from '../src/registry.ts';
import { createLogger } from '../src/shared/logger.ts';
import { hammer, interleave, loop, machineBusyMs, passwordLogin, passwordPages, type LoopResult, type Rate } from './scenarios.ts';

const dir = process.env.CLUSTER_DIR ?? join(process.env.TMPDIR ?? tmpdir(), 'lanyard-cluster');
const env = Object.fromEntries(readFileSync(join(dir, 'cluster.env'), 'utf8').trim().split('\n').map((line) => {
  const at = line.indexOf('=');
  return [line.slice(0, at), line.slice(at + 1)];
})) as Record<string, string>;
const issuer = env.ISSUER!;
const instances = Number(env.INSTANCES);
const secondsPerSide = Number(process.env.CLUSTER_SECONDS ?? 10);

/** utime+stime (+ reaped children's) of a process, ms; 0 when it is gone. */
function cpuOf(pid: number, withChildren = false): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ').map(Number);
    // fields[11..14]: utime stime cutime cstime, in clock ticks (100 per second on Linux)
    return (fields[11]! + fields[12]! + (withChildren ? fields[13]! + fields[14]! : 0)) * 10;
  } catch {
    return 0;
  }
}

const pidIn = (file: string) => Number(readFileSync(join(dir, file), 'utf8').split('\n')[0]!.trim());
const childrenOf = (parent: number) => readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]) === parent;
  } catch {
    return false;
  }
});

/** CPU time so far of each tier of the cluster, ms (Linux /proc). */
function clusterCpu(): Record<'lanyard' | 'postgres' | 'pgbouncer' | 'haproxy', number> {
  const postmasters = ['pg-primary/postmaster.pid', 'pg-standby/postmaster.pid'].map(pidIn);
  return {
    lanyard: Array.from({ length: instances }, (_, i) => cpuOf(pidIn(`lanyard${i + 1}.pid`))).reduce((a, b) => a + b, 0),
    postgres: postmasters.reduce((sum, pm) => sum + cpuOf(pm, true) + childrenOf(pm).reduce((s, c) => s + cpuOf(c), 0), 0),
    pgbouncer: cpuOf(pidIn('pgbouncer-primary.pid')) + cpuOf(pidIn('pgbouncer-standby.pid')),
    haproxy: cpuOf(pidIn('haproxy.pid')),
  };
}

type Cpu = ReturnType<typeof clusterCpu>;
const cpuSince = (before: Cpu): Cpu => {
  const now = clusterCpu();
  return { lanyard: now.lanyard - before.lanyard, postgres: now.postgres - before.postgres, pgbouncer: now.pgbouncer - before.pgbouncer, haproxy: now.haproxy - before.haproxy };
};
const addCpu = (runs: Cpu[]): Cpu => runs.reduce((a, b) => ({ lanyard: a.lanyard + b.lanyard, postgres: a.postgres + b.postgres, pgbouncer: a.pgbouncer + b.pgbouncer, haproxy: a.haproxy + b.haproxy }));

/** One command to HAProxy's runtime API (the stats socket of cluster.sh). */
function haproxy(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(join(dir, 'haproxy.sock'));
    let answer = '';
    socket.on('data', (d: Buffer) => { answer += d.toString(); });
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
    socket.end(`${command}\n`);
  });
}

async function serving(count: number): Promise<void> {
  for (let i = 2; i <= instances; i += 1) {
    await haproxy(`set server instances/lanyard${i} state ${i <= count ? 'ready' : 'maint'}`);
  }
  await new Promise((r) => setTimeout(r, 1_500)); // ready servers pass a health check again
}

// Clients and accounts written straight into the cluster's database (through PgBouncer), the way
// the CLI does it: one account per login loop, as many people sign in at once (one account
// hammered by all the loops would be throttled, rightly: src/identity/throttle.ts). As many loops
// as one instance's hashing queue admits (PASSWORD_HASH_CONCURRENCY, 8): they keep its hashing
// saturated; with more, the one-instance side measured mostly its own 503s and the pages of the
// attempts they refused (16 loops: 1,143 refused against 24 with three instances), not its capacity.
const LOOPS = 8;
const suffix = Date.now().toString(36);
const password = 'correct horse battery staple';
const setup = await createRegistry(loadConfig({ NODE_ENV: 'development', DATABASE_URL: env.DATABASE_URL, SECRET_KEY: env.SECRET_KEY, ISSUER: issuer, SEED_DEMO: 'false', LOG_LEVEL: 'warn', DATABASE_PREPARED_STATEMENTS: 'false' }), { logger: createLogger('warn'), deliver: false });
const web = { id: `bench-web-${suffix}`, secret: '', redirectUri: 'http://127.0.0.1:9/callback' };
web.secret = (await setup.clients.create({ clientId: web.id, kind: 'web', name: 'Bench', redirectUris: [web.redirectUri], postLogoutRedirectUris: [], firstParty: true })).clientSecret!;
const service = { id: `bench-svc-${suffix}`, secret: '' };
service.secret = (await setup.clients.create({ clientId: service.id, kind: 'service', name: 'Bench', redirectUris: [], postLogoutRedirectUris: [], firstParty: false })).clientSecret!;
const emails: string[] = [];
for (let i = 0; i < LOOPS; i += 1) {
  emails.push((await setup.accounts.create({ email: `bench-${suffix}-${i}@cluster.example`, password, name: 'Bench', emailVerified: true })).email);
}
await setup.close();
await new Promise((r) => setTimeout(r, 1_000));

/** LOOPS concurrent login loops, loop i always signing in account i. */
const logins = (seconds: number, loops = LOOPS) => {
  let next = 0;
  const perLoop = emails.slice(0, loops).map((email) => passwordLogin(issuer, web, passwordPages(email, password)));
  return loop(loops, seconds, () => perLoop[next++ % loops]!());
};

const slice = secondsPerSide / 2;
const busyBefore = machineBusyMs();
const started = Date.now();

const cpuRuns: Record<string, Cpu[]> = { token1: [], tokenN: [], login1: [], loginN: [] };
const tokenRun = async (count: number): Promise<Rate> => {
  await serving(count);
  const before = clusterCpu();
  const rate = await hammer({ url: issuer, path: '/token', authorization: basic(service.id, service.secret), connections: 32, seconds: slice, body: 'grant_type=client_credentials' });
  cpuRuns[count === 1 ? 'token1' : 'tokenN']!.push(cpuSince(before));
  return rate;
};
const loginRun = async (count: number): Promise<LoopResult> => {
  await serving(count);
  const before = clusterCpu();
  const result = await logins(slice);
  cpuRuns[count === 1 ? 'login1' : 'loginN']!.push(cpuSince(before));
  return result;
};

// Warm-up: every instance compiles its hot paths before anything is measured.
await serving(instances);
await hammer({ url: issuer, path: '/token', authorization: basic(service.id, service.secret), connections: 16, seconds: 3, body: 'grant_type=client_credentials' });
await logins(3);

const [tokenOne, tokenAll] = await interleave(2, () => tokenRun(1), () => tokenRun(instances));
const [loginOne, loginAll] = await interleave(2, () => loginRun(1), () => loginRun(instances));
await serving(instances);

const rate = (runs: Rate[]) => {
  const ok = runs.reduce((s, r) => s + r.ok, 0);
  const seconds = runs.reduce((s, r) => s + r.seconds, 0);
  return { perSecond: ok / seconds, done: ok, failed: runs.reduce((s, r) => s + r.non2xx + r.errors, 0) };
};
const loginRate = (runs: LoopResult[]) => {
  const done = runs.reduce((s, r) => s + r.done, 0);
  const seconds = runs.reduce((s, r) => s + r.seconds, 0);
  return { perSecond: done / seconds, done, failed: runs.reduce((s, r) => s + r.failed, 0) };
};
const elapsedMs = Date.now() - started;
const busyAfter = machineBusyMs();
const rows = [
  ['token (client_credentials), autocannon 32 connections', rate(tokenOne), rate(tokenAll), addCpu(cpuRuns.token1!), addCpu(cpuRuns.tokenN!)],
  [`password login (complete flow), ${LOOPS} loops`, loginRate(loginOne), loginRate(loginAll), addCpu(cpuRuns.login1!), addCpu(cpuRuns.loginN!)],
] as const;

const cores = availableParallelism();
process.stdout.write(`machine: ${cores} cores (${cpus()[0]?.model ?? 'unknown'}), load average before ${loadavg()[0]!.toFixed(1)}\n`);
const clusterMs = rows.reduce((sum, row) => sum + Object.values(row[3]).reduce((a, b) => a + b, 0) + Object.values(row[4]).reduce((a, b) => a + b, 0), 0);
if (busyBefore !== undefined && busyAfter !== undefined) {
  process.stdout.write(`machine busy during the runs: ${((busyAfter - busyBefore) / (elapsedMs * cores) * 100).toFixed(0)} % of ${cores} cores; the cluster's own processes: ${(clusterMs / (elapsedMs * cores) * 100).toFixed(0)} %\n`);
}
process.stdout.write(`| scenario | 1 instance /s | ${instances} instances /s | ratio |\n| --- | ---: | ---: | ---: |\n`);
for (const [name, one, all] of rows) {
  const failures = one.failed + all.failed ? ` (not 200: ${one.failed} / ${all.failed})` : '';
  process.stdout.write(`| ${name}${failures} | ${one.perSecond.toFixed(0)} | ${all.perSecond.toFixed(0)} | ${(all.perSecond / one.perSecond).toFixed(2)}× |\n`);
}
process.stdout.write('\nCPU time per completed operation, ms (all processes of each tier; machine load does not change it much):\n');
process.stdout.write('| scenario | instances | Lanyard | PostgreSQL | PgBouncer | HAProxy | total |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n');
for (const [name, one, all, cpuOne, cpuAll] of rows) {
  for (const [count, result, cpu] of [[1, one, cpuOne], [instances, all, cpuAll]] as const) {
    const per = (ms: number) => (ms / result.done).toFixed(2);
    const total = cpu.lanyard + cpu.postgres + cpu.pgbouncer + cpu.haproxy;
    process.stdout.write(`| ${name.split(',')[0]} | ${count} | ${per(cpu.lanyard)} | ${per(cpu.postgres)} | ${per(cpu.pgbouncer)} | ${per(cpu.haproxy)} | ${per(total)} |\n`);
  }
}
