import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { openDatabase, PreparedStatementError, type Database } from '../../../src/persistence/db.ts';
import { serverUrl } from '../../helpers/db.ts';

/**
 * DATABASE_PREPARED_STATEMENTS (decisions 0062, 0070): a statement with parameters is prepared
 * under a name the second time its text runs, on either engine; off, nothing is. Read from the
 * server's own list of the connection's prepared statements (pg_prepared_statements), inside one
 * transaction so that every statement runs on the same connection.
 */
async function openOwn(preparedStatements: boolean, poolSize = 2): Promise<{ db: Database; done(): Promise<void> }> {
  const schema = serverUrl ? `lanyard_prep_${randomBytes(4).toString('hex')}` : undefined;
  const db = await openDatabase({ url: serverUrl, schema, poolSize, preparedStatements });
  return {
    db,
    async done() {
      if (schema) await db.query(`DROP SCHEMA "${schema}" CASCADE`);
      await db.close();
    },
  };
}

const LOOKUP = 'SELECT $1::int + 1 AS n';
const ours = `SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'lanyard\\_%' AND statement = '${LOOKUP.replaceAll("'", "''")}'`;

describe('prepared statements (DATABASE_PREPARED_STATEMENTS, decision 0070)', function () {
  this.timeout(60_000);

  for (const on of [true, false]) {
    it(`${on ? 'prepares a repeated statement once under a name' : 'prepares nothing when turned off'}, and answers the same`, async () => {
      const { db, done } = await openOwn(on);
      try {
        const seen = await db.transaction(async (tx) => {
          const answers: number[] = [];
          for (let i = 0; i < 3; i += 1) answers.push((await tx.query<{ n: number }>(LOOKUP, [i])).rows[0]!.n);
          const { rows } = await tx.query<{ n: number }>(ours);
          return { answers, prepared: rows[0]!.n };
        });
        expect(seen.answers).to.deep.equal([1, 2, 3]);
        expect(seen.prepared).to.equal(on ? 1 : 0);
      } finally {
        await done();
      }
    });
  }

  it('names a statement after its text, so that processes sharing a server connection agree on every name', async () => {
    const { db, done } = await openOwn(true);
    try {
      const names = await db.transaction(async (tx) => {
        for (let i = 0; i < 2; i += 1) await tx.query(LOOKUP, [i]);
        const { rows } = await tx.query<{ name: string }>(`SELECT name FROM pg_prepared_statements WHERE statement = $1`, [LOOKUP]);
        return rows.map((r) => r.name);
      });
      // Another process that met other statements first still gives this text the same name.
      expect(names).to.deep.equal([`lanyard_${createHash('sha256').update(LOOKUP).digest('hex').slice(0, 32)}`]);
    } finally {
      await done();
    }
  });

  it('says what to set when a pooler lost a prepared statement, and replaces the connection (a server)', async function () {
    if (!serverUrl) this.skip();
    // One connection: after the failure, the next transaction can only work on a new one.
    const { db, done } = await openOwn(true, 1);
    try {
      // DEALLOCATE behind the driver's back is what a pooler in transaction mode does, as seen
      // from the driver: the connection it writes to does not hold the name it prepared.
      const failure = await db.transaction(async (tx) => {
        await tx.query(LOOKUP, [1]);
        await tx.query(LOOKUP, [2]);
        await tx.exec('DEALLOCATE ALL');
        await tx.query(LOOKUP, [3]);
      }).then(() => undefined, (err: unknown) => err as Error);
      expect(failure).to.be.instanceOf(PreparedStatementError);
      expect(failure!.message).to.include('DATABASE_PREPARED_STATEMENTS=false');
      const after = await db.transaction(async (tx) => [(await tx.query<{ n: number }>(LOOKUP, [4])).rows[0]!.n, (await tx.query<{ n: number }>(LOOKUP, [5])).rows[0]!.n]);
      expect(after).to.deep.equal([5, 6]);
    } finally {
      await done();
    }
  });

  it('replaces the connection when another process changed the columns of a prepared statement (a server)', async function () {
    if (!serverUrl) this.skip();
    const { db, done } = await openOwn(true, 1);
    try {
      await db.exec('CREATE TABLE prep_t (a int)');
      await db.query('INSERT INTO prep_t (a) VALUES ($1)', [1]);
      const read = 'SELECT * FROM prep_t WHERE a = $1';
      const failure = await db.transaction(async (tx) => {
        await tx.query(read, [1]);
        await tx.query(read, [1]);
        // A migration run by another process (a rolling upgrade) adds a column.
        await tx.exec('ALTER TABLE prep_t ADD COLUMN b int');
        await tx.query(read, [1]);
      }).then(() => undefined, (err: unknown) => err as Error);
      expect(failure).to.be.instanceOf(PreparedStatementError);
      expect(failure!.message).to.include('cached plan must not change result type');
      // The ALTER was rolled back with the transaction: add it again, outside, as the other process would have.
      await db.exec('ALTER TABLE prep_t ADD COLUMN b int');
      const rows = await db.transaction(async (tx) => (await tx.query<{ a: number; b: number | null }>(read, [1])).rows);
      expect(rows).to.deep.equal([{ a: 1, b: null }]);
    } finally {
      await done();
    }
  });
});
