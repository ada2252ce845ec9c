import { expect } from 'chai';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import type { Database } from '../../../src/persistence/db.ts';

/**
 * A Trello member's addresses point at a member (decision 0065): the rule the foreign key kept,
 * now checked once per statement by migration 0027's triggers, on both engines. And one member
 * per account (decision 0013), by an index of linked members only (migration 0028).
 */
describe('trello_member_emails: every address belongs to a member, checked per statement', () => {
  let db: Database;

  beforeEach(async () => {
    await resetDatabase();
    db = await testDatabase();
    await db.query(`INSERT INTO trello_members (member_id, username, imported_at, updated_at) VALUES ('m1', 'one', now(), now()), ('m2', 'two', now(), now())`);
  });

  const addresses = async () => (await db.query<{ member_id: string; email: string }>('SELECT member_id, email FROM trello_member_emails ORDER BY member_id, email')).rows;
  const failure = (work: Promise<unknown>) => work.then(() => undefined, (err: unknown) => err as { code?: string; constraint?: string });

  it('takes addresses of existing members, several in one statement', async () => {
    await db.query(`INSERT INTO trello_member_emails (member_id, email, verified, is_primary) VALUES ('m1', 'a@example.com', true, true), ('m2', 'b@example.com', true, true)`);
    expect(await addresses()).to.deep.equal([{ member_id: 'm1', email: 'a@example.com' }, { member_id: 'm2', email: 'b@example.com' }]);
  });

  it('refuses a statement with one address of a member that does not exist, writing none of its rows', async () => {
    const err = await failure(db.query(`INSERT INTO trello_member_emails (member_id, email, verified, is_primary) VALUES ('m1', 'a@example.com', true, true), ('ghost', 'g@example.com', true, true)`));
    expect(err).to.include({ code: '23503', constraint: 'trello_member_emails_member_id_fkey' });
    expect(await addresses()).to.deep.equal([]);
  });

  it('refuses it inside a transaction too, rolling the transaction back', async () => {
    const err = await failure(db.transaction(async (tx) => {
      await tx.query(`INSERT INTO trello_members (member_id, username, imported_at, updated_at) VALUES ('m3', 'three', now(), now())`);
      await tx.query(`INSERT INTO trello_member_emails (member_id, email, verified, is_primary) VALUES ('m3', 'c@example.com', true, true)`);
      await tx.query(`INSERT INTO trello_member_emails (member_id, email, verified, is_primary) VALUES ('nobody', 'n@example.com', true, true)`);
    }));
    expect(err).to.include({ code: '23503' });
    expect((await db.query('SELECT 1 FROM trello_members WHERE member_id = $1', ['m3'])).rows).to.deep.equal([]);
    expect(await addresses()).to.deep.equal([]);
  });

  it('checks the rows an upsert inserts, and lets it update an address in place', async () => {
    await db.query(`INSERT INTO trello_member_emails (member_id, email, verified, is_primary) VALUES ('m1', 'a@example.com', false, true)`);
    const upsert = (member: string, email: string) => db.query(
      `INSERT INTO trello_member_emails (member_id, email, verified, is_primary) VALUES ($1, $2, true, true)
       ON CONFLICT (member_id, email) DO UPDATE SET verified = excluded.verified`, [member, email]);
    await upsert('m1', 'a@example.com');
    expect((await db.query<{ verified: boolean }>('SELECT verified FROM trello_member_emails')).rows).to.deep.equal([{ verified: true }]);
    expect(await failure(upsert('ghost', 'a@example.com'))).to.include({ code: '23503' });
  });

  it('never moves an address to another member, nor changes a member’s id under its addresses', async () => {
    await db.query(`INSERT INTO trello_member_emails (member_id, email, verified, is_primary) VALUES ('m1', 'a@example.com', true, true)`);
    expect(await failure(db.query(`UPDATE trello_member_emails SET member_id = 'm2'`))).to.include({ code: '23503' });
    expect(await failure(db.query(`UPDATE trello_members SET member_id = 'renamed' WHERE member_id = 'm1'`))).to.include({ code: '23503' });
    expect(await addresses()).to.deep.equal([{ member_id: 'm1', email: 'a@example.com' }]);
  });

  it('takes a deleted member’s addresses with it, as ON DELETE CASCADE did', async () => {
    await db.query(`INSERT INTO trello_member_emails (member_id, email, verified, is_primary) VALUES ('m1', 'a@example.com', true, true), ('m2', 'b@example.com', true, true)`);
    await db.query(`DELETE FROM trello_members WHERE member_id = 'm1'`);
    expect(await addresses()).to.deep.equal([{ member_id: 'm2', email: 'b@example.com' }]);
  });

  it('links at most one member to an account, and indexes only linked members', async () => {
    await db.query(`INSERT INTO accounts (id, email) VALUES ('acc1', 'one@example.com')`);
    await db.query(`UPDATE trello_members SET linked_account_id = 'acc1' WHERE member_id = 'm1'`);
    const err = await failure(db.query(`UPDATE trello_members SET linked_account_id = 'acc1' WHERE member_id = 'm2'`));
    expect(err).to.include({ code: '23505', constraint: 'trello_members__linked_account' });
    const indexed = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM trello_members WHERE linked_account_id IS NOT NULL`);
    expect(indexed.rows[0]!.n).to.equal(1);
    expect((await db.query<{ def: string }>(`SELECT pg_get_indexdef('trello_members__linked_account'::regclass) AS def`)).rows[0]!.def).to.match(/WHERE \(linked_account_id IS NOT NULL\)/);
  });
});
