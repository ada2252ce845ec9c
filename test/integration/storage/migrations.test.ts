import { expect } from 'chai';
import { mkdtempSync, writeFileSync, readdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openDatabase, type Database } from '../../../src/persistence/db.ts';
import { migrate, migrationsDir, readMigrations, schemaStatus, DatabaseTooNewError } from '../../../src/persistence/migrate.ts';
import { serverUrl } from '../../helpers/db.ts';

/** Migrations on a database of their own (a fresh PGlite, or a fresh schema on the server). */
describe('migrations', () => {
  let db: Database;
  const schema = `lanyard_migrate_${randomBytes(4).toString('hex')}`;

  before(async function () {
    this.timeout(60_000);
    db = await openDatabase({ url: serverUrl, schema: serverUrl ? schema : undefined });
  });
  after(async () => {
    if (serverUrl) await db.query(`DROP SCHEMA "${schema}" CASCADE`);
    await db.close();
  });

  it('applies every migration on an empty database, then nothing on a second run', async () => {
    const first = await migrate(db);
    expect(first).to.deep.equal(readMigrations().map((m) => `${String(m.version).padStart(4, '0')}_${m.name}`));
    expect(await migrate(db)).to.deep.equal([]);
    expect(await schemaStatus(db)).to.deep.equal({ pending: [] });
  });

  it('rolls a failing migration back whole and records nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lanyard-migrations-'));
    for (const file of readdirSync(migrationsDir)) copyFileSync(join(migrationsDir, file), join(dir, file));
    const next = String(readMigrations().length + 1).padStart(4, '0');
    writeFileSync(join(dir, `${next}_broken.sql`), 'CREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;');
    const error = await migrate(db, readMigrations(dir)).catch((err: unknown) => err);
    expect(error).to.be.instanceOf(Error);
    const { rows } = await db.query<{ t: string | null }>("SELECT to_regclass('half_done')::text AS t");
    expect(rows[0]!.t, 'the first statement of the failed migration was rolled back').to.equal(null);
    expect((await schemaStatus(db, readMigrations(dir))).pending).to.deep.equal([`${next}_broken`]);
  });

  it('refuses a database migrated by a newer release', async () => {
    await db.query("INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')");
    try {
      const error = await migrate(db).catch((err: unknown) => err);
      expect(error).to.be.instanceOf(DatabaseTooNewError);
      expect((await schemaStatus(db)).tooNew).to.equal(9999);
    } finally {
      await db.query('DELETE FROM schema_migrations WHERE version = 9999');
    }
  });

  it('serialises concurrent runs (two instances starting at once)', async function () {
    if (!serverUrl) this.skip(); // one PGlite instance runs one statement at a time anyway
    const other = `${schema}_b`;
    const a = await openDatabase({ url: serverUrl, schema: other });
    const b = await openDatabase({ url: serverUrl, schema: other });
    try {
      const [x, y] = await Promise.all([migrate(a), migrate(b)]);
      expect(x.length + y.length).to.equal(readMigrations().length);
    } finally {
      await a.query(`DROP SCHEMA "${other}" CASCADE`);
      await a.close();
      await b.close();
    }
  });
});
