import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.ts';
import { lowerWorkerPoolPriority } from '../src/shared/worker-pool-priority.ts';
import type { Config } from '../src/config/schema.ts';
import { createLogger } from '../src/shared/logger.ts';
import { openDatabase, type Database } from '../src/persistence/db.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { createRegistry, type Registry } from '../src/registry.ts';
import { createApp } from '../src/app.ts';

export interface BenchClients {
  service: { id: string; secret: string };
  web: { id: string; secret: string; redirectUri: string };
}

export interface LanyardServer {
  url: string;
  config: Config;
  registry: Registry;
  account: { email: string; password: string };
  close(): Promise<void>;
}

/**
 * Lanyard as `npm start` builds it (createRegistry + createApp), with the test configuration
 * (NODE_ENV=test: no mail worker), listening on 127.0.0.1 at an ephemeral port with its issuer
 * set to that address, on the benchmark's database. The sweeper runs at production's interval
 * (SWEEP_INTERVAL_SECONDS, 60): on the embedded engine it is also what vacuums and analyses the
 * tables (decision 0064), without which the embedded figures would be those of plans cached on
 * empty tables.
 *
 * It logs as production does — `LOG_LEVEL`'s default, `info`: an access line per request,
 * serialised by pino and written as `npm start` writes to stdout (createLogger's batched
 * destination, decision 0069) — to /dev/null, so that the figures include that work
 * (BENCH_LOG_LEVEL=silent measures without it). Until 2026-11-29 the bench wrote each line
 * synchronously, one system call a request, which production never did.
 */
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** BENCH_LOG_LEVEL (default `info`, production's), refused when it is no pino level. */
export function benchLogLevel(): (typeof LEVELS)[number] {
  const level = process.env.BENCH_LOG_LEVEL ?? 'info';
  if (!(LEVELS as readonly string[]).includes(level)) throw new Error(`BENCH_LOG_LEVEL: one of ${LEVELS.join(', ')}`);
  return level as (typeof LEVELS)[number];
}

export async function startLanyard(db: Database, clients: BenchClients, password: string): Promise<LanyardServer> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  // The hashing settings may be set for an A/B run (PASSWORD_HASH_THREADS=2 npm run bench …).
  const hashing = Object.fromEntries(['PASSWORD_HASH_THREADS', 'PASSWORD_HASH_CONCURRENCY', 'WORKER_POOL_NICE'].flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])));
  const logLevel = benchLogLevel();
  const config = loadConfig({ NODE_ENV: 'test', ...hashing }, {
    overrides: { issuer: url, port, logLevel, sweepIntervalSeconds: 60, secretKey: randomBytes(32).toString('base64url'), dataDir: join(tmpdir(), 'lanyard-bench') },
  });
  // BENCH_LOG_FILE keeps the lines (the upkeep's and the sweeper's timings, say) for a look afterwards.
  const registry = await createRegistry(config, { logger: createLogger(logLevel, process.env.BENCH_LOG_FILE || '/dev/null'), db });
  // As src/main.ts does. The pool is the process's: the baseline's hashes, in the same process,
  // run at the same priority (docs/benchmarks.md).
  await lowerWorkerPoolPriority(config.workerPoolNice);
  server.on('request', createApp(registry).callback());

  await registry.clients.create({ clientId: clients.service.id, clientSecret: clients.service.secret, kind: 'service', name: 'Bench service' });
  // First party: no consent page, and a refresh token without offline_access (like the products).
  await registry.clients.create({ clientId: clients.web.id, clientSecret: clients.web.secret, kind: 'web', name: 'Bench web', firstParty: true, redirectUris: [clients.web.redirectUri] });
  const account = await registry.accounts.create({ email: 'bench@example.com', password, name: 'Bench', emailVerified: true });

  return {
    url,
    config,
    registry,
    account: { email: account.email, password },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await registry.close();
    },
  };
}

/** The two clients every bench server registers: a service (client_credentials) and a first-party web client. */
export function newBenchClients(): BenchClients {
  return {
    service: { id: 'bench-service', secret: randomBytes(24).toString('base64url') },
    web: { id: 'bench-web', secret: randomBytes(24).toString('base64url'), redirectUri: 'http://127.0.0.1:9/callback' },
  };
}

/**
 * A database for a bench tool of its own: PGlite in memory, or on DATABASE_URL's server a new
 * schema named `<prefix>_<random>`, migrated; `close()` drops that schema and closes.
 */
export async function benchDatabase(prefix: string): Promise<{ db: Database; where: 'server' | 'embedded'; close(): Promise<void> }> {
  const url = process.env.DATABASE_URL || undefined;
  const schema = url ? `${prefix}_${randomBytes(4).toString('hex')}` : undefined;
  const db = await openDatabase({ url, schema, poolSize: 20 });
  const close = async () => {
    if (schema) await db.query(`DROP SCHEMA "${schema}" CASCADE`);
    await db.close();
  };
  try {
    await migrate(db);
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
  return { db, where: url ? 'server' : 'embedded', close };
}
