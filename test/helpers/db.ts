import { randomBytes } from 'node:crypto';
import { openDatabase, type Database } from '../../src/persistence/db.ts';
import { migrate } from '../../src/persistence/migrate.ts';

/**
 * One database per test process (the run, or each of its parallel workers): PGlite in memory by
 * default, or a fresh schema on the server named by DATABASE_URL (dropped at the end). Tests
 * isolate by truncating between files, not by a new initdb per test (about 4 s each on PGlite).
 */
let shared: { db: Database; schema?: string } | undefined;

export const serverUrl = process.env.DATABASE_URL || undefined;

export async function openTestDatabase(): Promise<Database> {
  if (shared) return shared.db;
  const schema = serverUrl ? `${runSchemaPrefix()}${randomBytes(4).toString('hex')}` : undefined;
  // Generous bounds: a test machine shared by parallel runs can be slow without being faulty
  // (the fault tests open their own pools with tight bounds).
  const db = await openDatabase({ url: serverUrl, schema, poolSize: 20, timeouts: { connectMs: 15_000, statementMs: 30_000, idleInTransactionMs: 60_000 } });
  await migrate(db);
  shared = schema ? { db, schema } : { db };
  return db;
}

export async function testDatabase(): Promise<Database> {
  return openTestDatabase();
}

/** Empties every table but the migration record. */
export async function resetDatabase(): Promise<void> {
  const db = await openTestDatabase();
  const { rows } = await db.query<{ name: string }>(
    `SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'`,
  );
  if (rows.length) await db.query(`TRUNCATE ${rows.map((r) => `"${r.name}"`).join(', ')}`);
}

export async function closeTestDatabase(): Promise<void> {
  if (!shared) return;
  const { db, schema } = shared;
  shared = undefined;
  if (schema) await db.query(`DROP SCHEMA "${schema}" CASCADE`);
  await db.close();
}

/** `lanyard_test_<run>_`: every schema of one run (its workers' included) starts with it. */
function runSchemaPrefix(): string {
  const run = process.env.LANYARD_TEST_RUN;
  return run && /^[0-9a-f]{8}$/.test(run) ? `lanyard_test_${run}_` : 'lanyard_test_';
}

/**
 * Drops the schemas this run's processes made on the server. Workers are ended by mocha without
 * an after-all of their own, so their schemas are dropped here, from the main process, once
 * every worker is gone.
 */
export async function dropRunSchemas(): Promise<void> {
  const prefix = runSchemaPrefix();
  // Without the run's name, another run's schemas could match: drop nothing.
  if (!serverUrl || prefix === 'lanyard_test_') return;
  const db = await openDatabase({ url: serverUrl, poolSize: 1 });
  try {
    const { rows } = await db.query<{ name: string }>(`SELECT nspname AS name FROM pg_namespace WHERE starts_with(nspname, $1)`, [prefix]);
    for (const { name } of rows) await db.query(`DROP SCHEMA "${name}" CASCADE`);
  } finally {
    await db.close();
  }
}
