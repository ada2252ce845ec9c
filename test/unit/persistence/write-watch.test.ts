import { expect } from 'chai';
import type { Database, Queryable } from '../../../src/persistence/db.ts';
import { watchWrites } from '../../../src/persistence/write-watch.ts';
import { isTokenAccountTable } from '../../../src/persistence/queries/accounts.ts';

/** A database that answers nothing and records what it was asked. */
function fakeDatabase(seen: string[]): Database {
  const q: Queryable = {
    query: async (sql: string) => { seen.push(sql); return { rows: [], rowCount: 0 }; },
    exec: async () => {},
  } as Queryable;
  return { engine: 'pglite', ...q, transaction: async (fn) => fn(q), close: async () => {} } as Database;
}

describe('watchWrites (the hook that drops the token account cache)', () => {
  const cases: [string, boolean][] = [
    ["UPDATE accounts SET status = 'deactivated' WHERE id = $1", true],
    ['update  "accounts" set name = $2', true],
    ['INSERT INTO account_managers (account_id, kind) VALUES ($1, $2)', true],
    ['DELETE FROM organizations WHERE id = $1', true],
    ['UPDATE organization_domains SET state = $2', true],
    ['WITH gone AS (DELETE FROM accounts WHERE id = $1 RETURNING id) SELECT count(*) FROM gone', true],
    // The refresh path's own writes name account_id columns, never the tables: no invalidation.
    ['INSERT INTO oidc_payloads (model, id_hash, payload, account_id) VALUES ($1, $2, $3, $4) ON CONFLICT (model, id_hash) DO UPDATE SET account_id = excluded.account_id', false],
    ['INSERT INTO session_activity (session_uid, account_id) VALUES ($1, $2)', false],
    ['UPDATE oidc_payloads SET consumed_at = $3 WHERE model = $1 AND id_hash = $2', false],
    ['SELECT id FROM accounts WHERE id = $1', false],
    ['INSERT INTO security_events (account_id) SELECT id FROM accounts', false],
  ];
  for (const [sql, invalidates] of cases) {
    it(`${invalidates ? 'signals' : 'ignores'}: ${sql.slice(0, 60)}`, async () => {
      let signals = 0;
      const db = watchWrites(fakeDatabase([]), isTokenAccountTable, () => { signals += 1; });
      await db.query(sql);
      expect(signals > 0).to.equal(invalidates);
    });
  }

  it('signals again once a transaction that wrote a watched table has ended', async () => {
    const signals: string[] = [];
    const seen: string[] = [];
    const db = watchWrites(fakeDatabase(seen), isTokenAccountTable, () => signals.push(`after ${seen.length}`));
    await db.transaction(async (tx) => {
      await tx.query('UPDATE accounts SET status = $2 WHERE id = $1');
      await tx.query('SELECT 1');
    });
    // Before and after the statement, and after the transaction (when the change is visible).
    expect(signals).to.deep.equal(['after 0', 'after 1', 'after 2']);
  });

  it('answers a statement it has seen before as the first time (the answer is remembered per text)', async () => {
    let signals = 0;
    const db = watchWrites(fakeDatabase([]), isTokenAccountTable, () => { signals += 1; });
    for (let i = 0; i < 3; i += 1) {
      await db.query("UPDATE accounts SET status = 'deactivated' WHERE id = $1");
      await db.query('UPDATE oidc_payloads SET consumed_at = $3 WHERE model = $1 AND id_hash = $2');
    }
    // Before and after each of the three account updates; none for the payload updates.
    expect(signals).to.equal(6);
  });
});
