import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { createLogger, type Logger } from '../../src/shared/logger.ts';
import type { Clock } from '../../src/shared/clock.ts';
import { createRegistry, type Registry } from '../../src/registry.ts';
import { createApp, type RouteEntry } from '../../src/app.ts';
import type { Database } from '../../src/persistence/db.ts';
import { testDatabase } from './db.ts';

export const TEST_SECRET_KEY = randomBytes(32).toString('base64url');

/** Test configuration: NODE_ENV=test, a fixed secret key, no seeding, overrides on top. */
export function testConfig(overrides: Record<string, unknown> = {}): Config {
  return loadConfig(
    { NODE_ENV: 'test' },
    { overrides: { secretKey: TEST_SECRET_KEY, dataDir: join(tmpdir(), 'lanyard-test'), clientCacheSeconds: 0, allowPrivateNetworkCalls: true, ...overrides } },
  );
}

export interface TestServer {
  url: string;
  registry: Registry;
  server: Server;
  /** The routes of our own routers (oidc-provider's come from its discovery document). */
  routeTable: readonly RouteEntry[];
  close(): Promise<void>;
}

/**
 * A real Lanyard listening on 127.0.0.1 with an ephemeral port, its issuer set to that address,
 * on the run's shared database. Two can run at once (two instances of one deployment).
 */
export async function startTestServer(options: { overrides?: Record<string, unknown>; clock?: Clock; logger?: Logger; db?: Database } = {}): Promise<TestServer> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const config = testConfig({ issuer: url, port, ...options.overrides });
  const registry = await createRegistry(config, {
    logger: options.logger ?? createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'),
    db: options.db ?? (await testDatabase()),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const app = createApp(registry);
  server.on('request', app.callback());
  return {
    url,
    registry,
    server,
    routeTable: app.routeTable,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await registry.close();
    },
  };
}
