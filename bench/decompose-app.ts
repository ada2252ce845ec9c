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
import { randomBytes } from 'node:crypto';
import Koa from 'koa';
import mount from 'koa-mount';
import { openDatabase } from '../src/persistence/db.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { requestContext } from '../src/http/request-context.ts';
import { securityHeaders } from '../src/http/security-headers.ts';
import { errorHandler } from '../src/http/error-handler.ts';
import { refuseNulInUrl, validHostOnly } from '../src/http/input-guards.ts';
import { metadataCaching } from '../src/http/metadata-caching.ts';
import { startLanyard, type BenchClients } from './lanyard.ts';
import { combineRates, hammer, type Rate } from './scenarios.ts';
import { basic } from './browser.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const SECONDS = 1.5;

const url = process.env.DATABASE_URL || undefined;
const schema = url ? `lanyard_decompose_${randomBytes(4).toString('hex')}` : undefined;
const db = await openDatabase({ url, schema, poolSize: 20 });
const closers: Array<() => Promise<void>> = [];
try {
  await migrate(db);
  const clients: BenchClients = {
    service: { id: 'bench-service', secret: randomBytes(24).toString('base64url') },
    web: { id: 'bench-web', secret: randomBytes(24).toString('base64url'), redirectUri: 'http://127.0.0.1:9/callback' },
  };
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
    if (batch) app.use((ctx, next) => registry.payloadWrites.around(next));
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
  for (let warm = 0; warm < 3; warm += 1) for (const v of variants) await run(v);
  const rates = new Map<string, Rate[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const v of round % 2 ? [...variants].reverse() : variants) {
      const rate = await run(v);
      if (rate.non2xx || rate.errors) process.stdout.write(`${v.name}: ${rate.non2xx} non-2xx, ${rate.errors} errors\n`);
      rates.get(v.name)!.push(rate);
    }
  }
  process.stdout.write(`\nclient_credentials, ${db.engine}${url ? ' server' : ' embedded'}, ${ROUNDS} interleaved rounds\n`);
  process.stdout.write('| step | req/s | main-thread CPU ms/request | Δ vs previous step |\n|---|---|---|---|\n');
  let previous: number | undefined;
  for (const v of variants) {
    const all = combineRates(rates.get(v.name)!);
    const delta = previous === undefined ? '' : `${all.serverCpuMs - previous >= 0 ? '+' : ''}${(all.serverCpuMs - previous).toFixed(3)}`;
    process.stdout.write(`| ${v.name} | ${Math.round(all.rps)} | ${all.serverCpuMs.toFixed(3)} | ${delta} |\n`);
    previous = all.serverCpuMs;
  }
} finally {
  for (const close of closers.reverse()) await close();
  if (schema) await db.query(`DROP SCHEMA "${schema}" CASCADE`);
  await db.close();
}
