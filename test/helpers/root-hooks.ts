import { closeTestDatabase, openTestDatabase, serverUrl } from './db.ts';

/** Mocha root hooks: the run's database is opened once before all tests and closed after. */
export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(60_000);
    await openTestDatabase();
    process.stdout.write(`  database engine: ${serverUrl ? 'PostgreSQL server (DATABASE_URL)' : 'PGlite (embedded)'}\n`);
  },
  async afterAll() {
    await closeTestDatabase();
  },
};
