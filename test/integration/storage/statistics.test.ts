import { expect } from 'chai';
import { Readable } from 'node:stream';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import { legacyMember } from '../../helpers/trello.ts';
import { importMembers } from '../../../src/legacy-trello/legacy-import.ts';
import { createTrelloMemberQueries } from '../../../src/persistence/queries/trello-members.ts';
import { systemClock } from '../../../src/shared/clock.ts';

/** Planner statistics and JIT (decision 0042): what keeps the hot lookups on their indexes at any size. */
describe('query planning: statistics after bulk loads, no JIT compilation', () => {
  beforeEach(() => resetDatabase());

  it('never JIT-compiles on the service\'s connections, in or out of a transaction', async () => {
    const db = await testDatabase();
    expect((await db.query<{ jit: string }>('SHOW jit')).rows[0]?.jit).to.equal('off');
    expect((await db.transaction((tx) => tx.query<{ jit: string }>('SHOW jit'))).rows[0]?.jit).to.equal('off');
  });

  it('leaves the tables it loaded analysed: the planner knows their sizes whatever autovacuum does', async () => {
    const db = await testDatabase();
    const reltuples = async (table: string) =>
      Number((await db.query<{ n: number }>(`SELECT reltuples AS n FROM pg_class WHERE oid = to_regclass($1)`, [table])).rows[0]?.n);
    // Emptied by TRUNCATE: never analysed since (-1), as after a fresh migration.
    expect(await reltuples('trello_member_emails')).to.equal(-1);
    const members = Array.from({ length: 7 }, (_, i) => legacyMember({
      emails: [{ address: `first${i}@example.com`, verified: true, primary: true }, { address: `second${i}@example.com`, verified: i % 2 === 0 }],
    }));
    const summary = await importMembers(
      { db, trelloMembers: createTrelloMemberQueries(db), clock: systemClock },
      Readable.from([members.map((m) => JSON.stringify(m)).join('\n')]),
      { batchSize: 3 },
    );
    expect(summary.inserted).to.equal(7);
    expect(await reltuples('trello_members')).to.equal(7);
    expect(await reltuples('trello_member_emails')).to.equal(14);
  });
});
