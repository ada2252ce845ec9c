import { createServer } from 'node:http';
import { availableParallelism } from 'node:os';
import { loadConfig, ConfigError } from './config/load.ts';
import { createLogger } from './shared/logger.ts';
import { DatabaseConnectError } from './persistence/db.ts';
import { DatabaseTooNewError } from './persistence/migrate.ts';
import { createRegistry } from './registry.ts';
import { createApp } from './app.ts';
import { seedDemo } from './cli/seed-demo.ts';

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
    if (err instanceof DatabaseConnectError || err instanceof DatabaseTooNewError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }

  if (config.seedDemo) {
    const seeded = await seedDemo(registry);
    if (seeded) process.stdout.write(`${seeded}\n`);
  }

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
  logger.info({ issuer: config.issuer, port: config.port, host: config.host, database: registry.db.engine, cores: availableParallelism() }, 'Lanyard is listening');
  process.stdout.write(`Lanyard is running: ${config.issuer} (discovery: ${config.issuer}/.well-known/openid-configuration)\n`);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // Stop accepting, let requests in flight finish, then close the database.
    server.close(() => {
      void registry.close().finally(() => process.exit(0));
    });
    server.closeIdleConnections();
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

await main();
