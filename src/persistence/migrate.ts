import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from './db.ts';

/**
 * Forward-only SQL migrations (convention 6, after graphile/worker): files named
 * `NNNN_description.sql`, applied in order, each in its own transaction together with its row
 * in `schema_migrations`. A transaction-scoped advisory lock serialises instances that start at
 * once on one server. A database that knows a migration this code does not is refused: it was
 * migrated by a newer release, and running older code against it could lose data.
 */

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrationsDir = join(import.meta.dirname, 'migrations');

/** Arbitrary constant naming the migration lock. */
const MIGRATION_LOCK = 7_263_011;

export function readMigrations(dir = migrationsDir): Migration[] {
  const migrations = readdirSync(dir)
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => {
      const match = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
      if (!match) throw new Error(`migration file name must look like 0001_name.sql: ${file}`);
      return { version: Number(match[1]), name: match[2]!, sql: readFileSync(join(dir, file), 'utf8') };
    });
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations must be numbered 1, 2, 3 … without gaps: ${m.version}_${m.name}`);
  });
  return migrations;
}

export class DatabaseTooNewError extends Error {
  constructor(version: number) {
    super(`the database has migration ${version}, newer than this release knows; upgrade Lanyard before starting it on this database`);
    this.name = 'DatabaseTooNewError';
  }
}

/** Applies pending migrations; returns the names of those applied (empty on a second start). */
export async function migrate(db: Database, migrations = readMigrations()): Promise<string[]> {
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
  });
  const applied: string[] = [];
  for (const migration of migrations) {
    const done = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const { rows } = await tx.query<{ version: number }>('SELECT version FROM schema_migrations WHERE version = $1', [migration.version]);
      if (rows.length) return false;
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
      return true;
    });
    if (done) applied.push(`${String(migration.version).padStart(4, '0')}_${migration.name}`);
  }
  await assertSchemaCurrent(db, migrations);
  return applied;
}

/** Throws unless every known migration is applied and none unknown is. Used by /readyz and at start. */
export async function assertSchemaCurrent(db: Database, migrations = readMigrations()): Promise<void> {
  const status = await schemaStatus(db, migrations);
  if (status.tooNew !== undefined) throw new DatabaseTooNewError(status.tooNew);
  if (status.pending.length) throw new Error(`pending migrations: ${status.pending.join(', ')}`);
}

export async function schemaStatus(db: Database, migrations = readMigrations()): Promise<{ pending: string[]; tooNew?: number }> {
  const { rows: [table] } = await db.query<{ exists: boolean }>(
    "SELECT to_regclass('schema_migrations') IS NOT NULL AS exists",
  );
  const { rows } = table?.exists
    ? await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')
    : { rows: [] };
  const applied = new Set(rows.map((r) => r.version));
  const latestKnown = migrations.at(-1)?.version ?? 0;
  const tooNew = rows.map((r) => r.version).find((v) => v > latestKnown);
  const pending = migrations.filter((m) => !applied.has(m.version)).map((m) => `${String(m.version).padStart(4, '0')}_${m.name}`);
  return tooNew === undefined ? { pending } : { pending, tooNew };
}
