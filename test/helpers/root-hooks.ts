import { randomBytes } from 'node:crypto';
import { closeTestDatabase, dropRunSchemas, openTestDatabase, serverUrl } from './db.ts';

/**
 * Mocha root hooks and global fixtures. `npm test` runs the files in parallel worker processes
 * (`.mocharc.json`: `parallel`, `jobs`); each worker opens one database for every file it runs.
 *
 * - In a worker, root `beforeAll`/`afterAll` run once per file (mocha's parallel mode), so the
 *   database is opened on the first file and left open for the next; the worker is ended by
 *   mocha when the run is over, and the global teardown drops the run's server schemas.
 * - Run serially (one file, `--no-parallel`), the hooks run once for the run: open, then close.
 */
const inWorker = process.env.MOCHA_WORKER_ID !== undefined;
let announced = false;

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(60_000);
    await openTestDatabase();
    if (announced) return;
    announced = true;
    process.stdout.write(`  database engine: ${serverUrl ? 'PostgreSQL server (DATABASE_URL)' : 'PGlite (embedded)'}${inWorker ? ` (worker ${process.env.MOCHA_WORKER_ID})` : ''}\n`);
  },
  async afterAll() {
    if (!inWorker) await closeTestDatabase();
  },
};

/**
 * Runs once, in mocha's main process, before any worker starts: names the run for its schemas
 * (always a new name, so that the teardown drops this run's schemas and no other's).
 */
export function mochaGlobalSetup(): void {
  process.env.LANYARD_TEST_RUN = randomBytes(4).toString('hex');
}

/** Runs once, in mocha's main process, after every worker has ended. */
export async function mochaGlobalTeardown(): Promise<void> {
  await dropRunSchemas();
}
