/**
 * Where Lanyard's Koa application spends its time in front of the engine on `/token`
 * (client_credentials): the engine alone, then a Koa app mounting it, then Lanyard's layers added
 * one at a time in createApp's order, then createApp itself. Each step is measured as main-thread
 * CPU time per answered request, in interleaved rounds, as bench/decompose.ts does. Not part of
 * `npm run bench`:
 *
 *   node --experimental-strip-types bench/decompose-app.ts
 *
 * Same database choice as the bench (DATABASE_URL or embedded); BENCH_ROUNDS (default 4).
 */
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import mount from 'koa-mount';
import { requestContext } from '../src/http/request-context.ts';
import { securityHeaders } from '../src/http/security-headers.ts';
import { errorHandler } from '../src/http/error-handler.ts';
import { refuseNulInUrl, validHostOnly } from '../src/http/input-guards.ts';
import { metadataCaching } from '../src/http/metadata-caching.ts';
import { benchDatabase, newBenchClients, startLanyard, type BenchClients } from './lanyard.ts';
import { hammer, interleavedRounds, printSteps, type Rate } from './scenarios.ts';
import { basic } from './browser.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const SECONDS = 1.5;

const { db, where, close: closeDb } = await benchDatabase('lanyard_decompose');
const closers: Array<() => Promise<void>> = [];
try {
  const clients: BenchClients = newBenchClients();
  const lanyard = await startLanyard(db, clients, 'benchmark passphrase 2026');
  closers.push(() => lanyard.close());
  const { registry } = lanyard;
  const { config, provider } = registry;

  const serve = async (listener: RequestListener): Promise<string> => {
    const server = createServer(listener);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  // createApp's layers in its order, each step adding one more in front of the engine.
  const layers: Array<{ name: string; middleware: Koa.Middleware }> = [
    { name: '+ requestContext (id, access line)', middleware: requestContext(registry.logger) },
    { name: '+ securityHeaders', middleware: securityHeaders({ hsts: false }) },
    { name: '+ errorHandler', middleware: errorHandler(registry.views) },
    { name: '+ validHostOnly', middleware: validHostOnly() },
    { name: '+ refuseNulInUrl', middleware: refuseNulInUrl(['/api/']) },
    { name: '+ metadataCaching', middleware: metadataCaching({ discoveryPath: '/.well-known/openid-configuration', jwksPath: '/jwks', keyActivationDelaySeconds: config.keyActivationDelaySeconds }) },
  ];
  const koaWith = (count: number, batch: boolean): Koa => {
    const app = new Koa();
    app.silent = true;
    app.keys = registry.cookieKeys;
    for (const layer of layers.slice(0, count)) app.use(layer.middleware);
    if (batch) app.use((_ctx, next) => registry.payloadWrites.around(next));
    app.use(mount(provider));
    return app;
  };
  const variants: Array<{ name: string; url: string }> = [
    { name: 'the engine alone (provider.callback())', url: await serve(provider.callback()) },
    { name: 'a Koa app mounting it', url: await serve(koaWith(0, false).callback()) },
    { name: '+ the write batch (around)', url: await serve(koaWith(0, true).callback()) },
  ];
  for (let i = 1; i <= layers.length; i += 1) variants.push({ name: layers[i - 1]!.name, url: await serve(koaWith(i, true).callback()) });
  variants.push({ name: 'Lanyard (createApp)', url: lanyard.url });

  const run = (v: (typeof variants)[number]): Promise<Rate> => hammer({ url: v.url, path: '/token', authorization: basic(clients.service.id, clients.service.secret), connections: 16, seconds: SECONDS, body: 'grant_type=client_credentials' });
  const rates = await interleavedRounds(variants, run, ROUNDS);
  printSteps(`client_credentials, ${db.engine} ${where}, ${ROUNDS} interleaved rounds`, variants, rates);
} finally {
  for (const close of closers.reverse()) await close();
  await closeDb();
}
