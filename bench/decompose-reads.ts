/**
 * userinfo and introspection decomposed: bare oidc-provider (the baseline), with Lanyard's storage
 * adapter, then with its clients from the database, Lanyard's provider
 * served alone (`provider.callback()`: its configuration, adapter, clients, findAccount and
 * policy, no Koa application of ours), and Lanyard itself (createApp: our layers in front).
 * Main-thread CPU per answered request, in interleaved rounds. Not part of `npm run bench`:
 *
 *   node --experimental-strip-types bench/decompose-reads.ts [userinfo|introspection]
 *
 * Same database choice as the bench (DATABASE_URL or embedded); BENCH_ROUNDS (default 6).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basic, browser } from './browser.ts';
import { baselinePasswordPage, hammer, interleavedRounds, passwordPages, printSteps, tokensFrom, type LoadJob, type Rate } from './scenarios.ts';
import { standalone } from './servers.ts';
import { startBaseline } from './baseline.ts';
import { createPostgresAdapter } from '../src/oidc/adapter.ts';

const scenario = process.argv[2] === 'introspection' ? 'introspection' : 'userinfo';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const SECONDS = Number(process.env.BENCH_SLICE ?? 1.5);

const { options, done } = standalone();
const closers: Array<() => Promise<void>> = [];
try {
  const s = await options.servers();
  const providerOnly = createServer(s.lanyard.registry.provider.callback());
  await new Promise<void>((resolve) => providerOnly.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => { providerOnly.closeAllConnections(); providerOnly.close(() => resolve()); }));
  const lanyardToken = (await tokensFrom(browser(s.urls.lanyard), s.urls.lanyard, s.clients.web, passwordPages(s.lanyard.account.email, s.password), 'openid email profile')).access_token!;
  const baselineToken = (await tokensFrom(browser(s.urls.baseline), s.urls.baseline, s.clients.web, baselinePasswordPage(s.lanyard.account.email, s.password), 'openid email profile')).access_token!;
  // The baseline with Lanyard's pieces: its storage adapter, then its clients from the database.
  const { registry } = s.lanyard;
  const LanyardAdapter = createPostgresAdapter(registry.oidcPayloads, registry.clock);
  const partial = async (parts: Parameters<typeof startBaseline>[2]) => {
    const server = await startBaseline(s.db, s.clients, parts);
    closers.push(() => server.close());
    const noPage = async (): Promise<Response> => { throw new Error('the baseline shows no login page'); };
    return { url: server.url, token: (await tokensFrom(browser(server.url), server.url, s.clients.web, noPage, 'openid email profile')).access_token! };
  };
  const withAdapter = await partial({ adapter: (model) => new LanyardAdapter(model) });
  const withClients = await partial({ adapter: (model) => new LanyardAdapter(model), findClient: (id) => registry.clients.findMetadata(id) });
  const variants = [
    { name: 'bare oidc-provider (the baseline)', url: s.urls.baseline, token: baselineToken },
    { name: "+ Lanyard's storage adapter", ...withAdapter },
    { name: '+ clients from the database', ...withClients },
    { name: "Lanyard's provider, no Koa app of ours", url: `http://127.0.0.1:${(providerOnly.address() as AddressInfo).port}`, token: lanyardToken },
    { name: 'Lanyard (createApp)', url: s.urls.lanyard, token: lanyardToken },
  ];
  const run = (v: (typeof variants)[number]): Promise<Rate> => {
    const job: LoadJob = scenario === 'userinfo'
      ? { url: v.url, path: '/me', method: 'GET', authorization: `Bearer ${v.token}`, connections: 16, seconds: SECONDS }
      : { url: v.url, path: '/token/introspection', authorization: basic(s.clients.web.id, s.clients.web.secret), connections: 16, seconds: SECONDS, body: `token=${encodeURIComponent(v.token)}&token_type_hint=access_token` };
    return hammer(job);
  };
  const rates = await interleavedRounds(variants, run, ROUNDS);
  printSteps(`${scenario}, ${s.where}, ${ROUNDS} interleaved rounds of ${SECONDS} s`, variants, rates);
} finally {
  for (const close of closers.reverse()) await close();
  await done();
}
