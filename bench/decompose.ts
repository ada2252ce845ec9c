/**
 * Where Lanyard's time on the token endpoint goes: the baseline with Lanyard's pieces added one at
 * a time, then Lanyard's own provider without our Koa app, then Lanyard. Each step is measured as
 * main-thread CPU time per answered request (steadier than a rate on a shared machine), in
 * interleaved rounds. Not part of `npm run bench`; run it when a target is missed:
 *
 *   node --experimental-strip-types bench/decompose.ts [refresh_token|client_credentials]
 *
 * Same database choice as the bench (DATABASE_URL or embedded); BENCH_ROUNDS (default 4).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPostgresAdapter } from '../src/oidc/adapter.ts';
import { benchDatabase, newBenchClients, startLanyard, type BenchClients } from './lanyard.ts';
import { startBaseline, type BaselineServer } from './baseline.ts';
import { combineRates, hammer, machineBusyMs, passwordPages, refreshPool, type LoadJob, type Rate, type SignIn } from './scenarios.ts';
import { basic } from './browser.ts';

const scenario = process.argv[2] === 'client_credentials' ? 'client_credentials' : 'refresh_token';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const PER_RUN = 500; // refresh tokens spent per variant and round
const CC_SECONDS = 1.5;
const PASSWORD = 'benchmark passphrase 2026';

const { db, where, close: closeDb } = await benchDatabase('lanyard_decompose');
const closers: Array<() => Promise<void>> = [];
try {
  const clients: BenchClients = newBenchClients();
  const lanyard = await startLanyard(db, clients, PASSWORD);
  closers.push(() => lanyard.close());
  const { registry } = lanyard;
  const accountId = (await registry.accounts.findByEmail(lanyard.account.email))!.id;
  const LanyardAdapter = createPostgresAdapter(registry.oidcPayloads, registry.clock);
  const baseline = async (parts: Parameters<typeof startBaseline>[2]): Promise<string> => {
    const server: BaselineServer = await startBaseline(db, clients, parts);
    closers.push(() => server.close());
    return server.url;
  };
  const providerOnly = createServer(registry.provider.callback());
  await new Promise<void>((resolve) => providerOnly.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => { providerOnly.closeAllConnections(); providerOnly.close(() => resolve()); }));

  const variants: Array<{ name: string; url: string; lanyardTokens: boolean }> = [
    { name: 'bare oidc-provider (the baseline)', url: await baseline({}), lanyardTokens: false },
    { name: '+ Lanyard storage adapter', url: await baseline({ adapter: (model) => new LanyardAdapter(model) }), lanyardTokens: false },
    { name: '+ clients from the database', url: await baseline({ adapter: (model) => new LanyardAdapter(model), findClient: (id) => registry.clients.findMetadata(id) }), lanyardTokens: false },
    {
      name: '+ account lookup (findAccount)',
      url: await baseline({ adapter: (model) => new LanyardAdapter(model), findClient: (id) => registry.clients.findMetadata(id), findAccount: (id) => registry.accounts.findById(id), accountId }),
      lanyardTokens: false,
    },
    { name: "Lanyard's provider, no Koa app", url: `http://127.0.0.1:${(providerOnly.address() as AddressInfo).port}`, lanyardTokens: true },
    { name: 'Lanyard (createApp)', url: lanyard.url, lanyardTokens: true },
  ];

  // Refresh tokens from real code + PKCE flows; Lanyard's two variants share Lanyard's pool.
  const pools = new Map<string, string[]>();
  if (scenario === 'refresh_token') {
    const count = PER_RUN * (ROUNDS + 3);
    const lanyardPool = await refreshPool(lanyard.url, clients.web, passwordPages(lanyard.account.email, PASSWORD), 2 * count);
    const noPage: SignIn = async () => { throw new Error('the baseline shows no login page'); };
    for (const v of variants) pools.set(v.name, v.lanyardTokens ? lanyardPool : await refreshPool(v.url, clients.web, noPage, count));
  }
  const run = (v: (typeof variants)[number]): Promise<Rate> => {
    const job: LoadJob = scenario === 'client_credentials'
      ? { url: v.url, path: '/token', authorization: basic(clients.service.id, clients.service.secret), connections: 16, seconds: CC_SECONDS, body: 'grant_type=client_credentials' }
      : { url: v.url, path: '/token', authorization: basic(clients.web.id, clients.web.secret), connections: 16, amount: PER_RUN, bodies: pools.get(v.name)!.splice(0, PER_RUN).map((token) => `grant_type=refresh_token&refresh_token=${encodeURIComponent(token)}`) };
    return hammer(job);
  };

  // Warm-up, alternating: the variants share oidc-provider's code (see WARMUP_ROUNDS in run.ts).
  for (let warm = 0; warm < 3; warm += 1) for (const v of variants) await run(v);
  const rates = new Map<string, Rate[]>(variants.map((v) => [v.name, []]));
  const machine = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const v of round % 2 ? [...variants].reverse() : variants) {
      const before = machineBusyMs();
      const rate = await run(v);
      if (rate.non2xx || rate.errors) process.stdout.write(`${v.name}: ${rate.non2xx} non-2xx, ${rate.errors} errors\n`);
      rates.get(v.name)!.push(rate);
      if (before !== undefined) machine.get(v.name)!.push((machineBusyMs()! - before) / rate.ok);
    }
  }

  process.stdout.write(`\n${scenario}, ${db.engine} ${where}, ${ROUNDS} interleaved rounds\n`);
  process.stdout.write('| step | req/s | main-thread CPU ms/request | Δ vs previous step | whole-machine CPU ms/request |\n|---|---|---|---|---|\n');
  let previous: number | undefined;
  for (const v of variants) {
    const all = combineRates(rates.get(v.name)!);
    const m = machine.get(v.name)!;
    const delta = previous === undefined ? '' : `${all.serverCpuMs - previous >= 0 ? '+' : ''}${(all.serverCpuMs - previous).toFixed(3)}`;
    process.stdout.write(`| ${v.name} | ${Math.round(all.rps)} | ${all.serverCpuMs.toFixed(3)} | ${delta} | ${m.length ? (m.reduce((a, b) => a + b, 0) / m.length).toFixed(3) : 'n/a'} |\n`);
    previous = all.serverCpuMs;
  }
} finally {
  for (const close of closers.reverse()) await close();
  await closeDb();
}
