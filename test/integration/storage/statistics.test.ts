import { expect } from 'chai';
import { Readable } from 'node:stream';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import { importLegacy, legacyMember } from '../../helpers/trello.ts';
import { startTestServer } from '../../helpers/server.ts';
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

  it('leaves the tables a bulk migration filled analysed', async () => {
    const server = await startTestServer();
    try {
      const db = await testDatabase();
      const reltuples = async (table: string) =>
        Number((await db.query<{ n: number }>(`SELECT reltuples AS n FROM pg_class WHERE oid = to_regclass($1)`, [table])).rows[0]?.n);
      await importLegacy(server.registry, Array.from({ length: 5 }, (_, i) => legacyMember({
        emails: [{ address: `kept${i}@example.com`, verified: true, primary: true }, { address: `retired${i}@example.com`, verified: true }],
      })));
      expect(await reltuples('accounts')).to.equal(-1);
      const summary = await server.registry.trello.bulk.run({ dryRun: false, batchSize: 2 });
      expect(summary.linked).to.equal(5);
      expect(await reltuples('accounts')).to.equal(5);
      expect(await reltuples('retired_emails')).to.equal(5);
      expect(await reltuples('mail_outbox')).to.equal(5);
    } finally {
      await server.close();
    }
  });
});
