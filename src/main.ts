import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { availableParallelism } from 'node:os';
import { loadConfig, ConfigError } from './config/load.ts';
import { createLogger } from './shared/logger.ts';
import { DatabaseConnectError, DatabaseUnavailableError } from './persistence/db.ts';
import { SecretKeyMismatchError } from './config/secret-key.ts';
import { DatabaseTooNewError } from './persistence/migrate.ts';
import { createRegistry } from './registry.ts';
import { createApp } from './app.ts';
import { seedDemo } from './cli/seed-demo.ts';
import { lowerWorkerPoolPriority } from './shared/worker-pool-priority.ts';

/**
 * Process entry: configuration → database → migrations → app → listen → graceful shutdown.
 * A configuration or connection problem stops the process with one clear line per problem.
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.problems) process.stderr.write(`${line}\n`);
      process.exit(1);
    }
    throw err;
  }

  const logger = createLogger(config.logLevel);
  let registry;
  try {
    registry = await createRegistry(config, { logger });
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.problems) process.stderr.write(`${line}\n`);
      process.exit(1);
    }
    if (err instanceof DatabaseConnectError || err instanceof DatabaseTooNewError || err instanceof SecretKeyMismatchError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    if (err instanceof DatabaseUnavailableError) {
      process.stderr.write(`DATABASE_URL: the database stopped answering during start-up (${err.message})\n`);
      process.exit(1);
    }
    throw err;
  }

  if (config.seedDemo) {
    const seeded = await seedDemo(registry);
    if (seeded) process.stdout.write(`${seeded}\n`);
  }

  // After the registry: its decoy hash has started libuv's pool, whose threads are lowered here.
  const pool = await lowerWorkerPoolPriority(config.workerPoolNice);
  if (config.workerPoolNice > 0 && pool.threads === 0) logger.warn({ nice: config.workerPoolNice }, 'WORKER_POOL_NICE: the thread pool\'s priority could not be lowered here (Linux names its threads; this system does not)');

  const app = createApp(registry);
  const server = createServer(app.callback());
  // Keep-alive longer than a typical load balancer's idle timeout, so it closes first.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  }).catch((err: NodeJS.ErrnoException) => {
    process.stderr.write(`PORT: cannot listen on ${config.host}:${config.port} (${err.code === 'EADDRINUSE' ? 'address in use' : err.message})\n`);
    process.exit(1);
  });
  logger.info({ issuer: config.issuer, port: config.port, host: config.host, database: registry.db.engine, cores: availableParallelism(), poolNice: pool.threads ? config.workerPoolNice : 0 }, 'Lanyard is listening');
  process.stdout.write(`Lanyard is running: ${config.issuer} (discovery: ${config.issuer}/.well-known/openid-configuration)\n`);

  // Graceful shutdown (docs/reliability.md): stop accepting, let requests in flight finish (their
  // responses close the connection), let the mail worker finish the message it is sending, close
  // the pool, exit 0. Past SHUTDOWN_TIMEOUT_SECONDS the process exits 1 with work unfinished.
  let stopping = false;
  const inFlight = new Set<ServerResponse>();
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (stopping) res.setHeader('Connection', 'close');
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
  });
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, inFlight: inFlight.size }, 'shutting down');
    setTimeout(() => {
      process.stderr.write(`SHUTDOWN_TIMEOUT_SECONDS: still stopping after ${config.shutdownTimeoutSeconds} s (${inFlight.size} requests in flight); exiting\n`);
      process.exit(1);
    }, config.shutdownTimeoutSeconds * 1000).unref();
    // Keep-alive clients are told to reconnect (to another instance) after their current response.
    for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
    server.close(() => {
      registry.close().then(() => {
        logger.info('stopped');
        process.exit(0);
      }, (err: unknown) => {
        process.stderr.write(`shutdown: ${(err as Error).message}\n`);
        process.exit(1);
      });
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

await main();
