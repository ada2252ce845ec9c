import { expect } from 'chai';
import { testDatabase } from '../../helpers/db.ts';

describe('database transactions', () => {
  it('commits what the callback did when it resolves', async () => {
    const db = await testDatabase();
    await db.query('CREATE TABLE IF NOT EXISTS tx_probe (v int)');
    await db.query('DELETE FROM tx_probe');
    await db.transaction(async (tx) => { await tx.query('INSERT INTO tx_probe VALUES (1)'); });
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM tx_probe');
    expect(rows[0]!.n).to.equal(1);
  });

  it('rolls everything back when the callback throws', async () => {
    const db = await testDatabase();
    await db.query('CREATE TABLE IF NOT EXISTS tx_probe (v int)');
    await db.query('DELETE FROM tx_probe');
    const err = await db.transaction(async (tx) => {
      await tx.query('INSERT INTO tx_probe VALUES (2)');
      throw new Error('boom');
    }).catch((e: unknown) => e);
    expect((err as Error).message).to.equal('boom');
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM tx_probe');
    expect(rows[0]!.n).to.equal(0);
  });

  it('refuses a query on the database itself from inside a transaction instead of hanging', async () => {
    const db = await testDatabase();
    const err = await db.transaction(async () => db.query('SELECT 1')).catch((e: unknown) => e);
    expect((err as Error).message).to.contain('use the transaction handle');
    expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, 'the database still answers').to.equal(1);
  });
});
