import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { openDatabase, type Database } from '../../../src/persistence/db.ts';
import { serverUrl } from '../../helpers/db.ts';

/**
 * DATABASE_PREPARED_STATEMENTS (decisions 0062, 0070): a statement with parameters is prepared
 * under a name the second time its text runs, on either engine; off, nothing is. Read from the
 * server's own list of the connection's prepared statements (pg_prepared_statements), inside one
 * transaction so that every statement runs on the same connection.
 */
async function openOwn(preparedStatements: boolean): Promise<{ db: Database; done(): Promise<void> }> {
  const schema = serverUrl ? `lanyard_prep_${randomBytes(4).toString('hex')}` : undefined;
  const db = await openDatabase({ url: serverUrl, schema, poolSize: 2, preparedStatements });
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

  it('says what to set when a pooler lost a prepared statement (a server)', async function () {
    if (!serverUrl) this.skip();
    const { db, done } = await openOwn(true);
    try {
      // DEALLOCATE behind the driver's back is what a pooler in transaction mode does, as seen
      // from the driver: the connection it writes to does not hold the name it prepared.
      const failure = await db.transaction(async (tx) => {
        await tx.query(LOOKUP, [1]);
        await tx.query(LOOKUP, [2]);
        await tx.exec('DEALLOCATE ALL');
        return tx.query(LOOKUP, [3]).then(() => undefined, (err: unknown) => err as Error);
      }).catch((err: unknown) => err as Error);
      expect(failure).to.be.instanceOf(Error);
      expect(failure!.message).to.include('DATABASE_PREPARED_STATEMENTS=false');
    } finally {
      await done();
    }
  });
});
