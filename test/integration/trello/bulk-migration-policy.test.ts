import { expect } from 'chai';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount } from '../../helpers/factories.ts';
import { importLegacy, legacyMember } from '../../helpers/trello.ts';
import { CONFLICT, type BulkOutcome } from '../../../src/legacy-trello/bulk-migration.ts';

/**
 * The bulk migration asks the decision point (`bulk_migration`) about the account at a member's
 * best address: a deactivated one may not take a member (and its person cannot log in there to
 * prove it), so the report says so instead of "log in there"; free addresses still get accounts.
 */
describe('legacy Trello accounts: the bulk migration consults the decision point', () => {
  let server: TestServer;

  beforeEach(async () => {
    await resetDatabase();
    server = await startTestServer();
  });
  afterEach(async () => server.close());

  it('reports a member whose address is a deactivated account\'s as refused, an active account\'s as "log in there", and creates accounts at free addresses', async () => {
    const active = await createAccount(server.registry, { email: 'active@example.com' });
    const off = await createAccount(server.registry, { email: 'off@example.com' });
    await server.registry.db.query(`UPDATE accounts SET status = 'deactivated' WHERE id = $1`, [off.id]);
    const v = (address: string) => [{ address, verified: true, primary: true }];
    const toActive = legacyMember({ emails: v(active.email) });
    const toOff = legacyMember({ emails: v(off.email) });
    const free = legacyMember({ emails: v('free@example.com') });
    await importLegacy(server.registry, [toActive, toOff, free]);

    for (const dryRun of [true, false]) {
      const outcomes: BulkOutcome[] = [];
      await server.registry.trello.bulk.run({ dryRun, onOutcome: (o) => outcomes.push(o) });
      const of = (id: string) => outcomes.find((o) => o.memberId === id);
      expect(of(toActive.id)).to.deep.include({ action: 'conflict', reason: CONFLICT.taken });
      expect(of(toOff.id)).to.deep.include({ action: 'conflict', email: off.email, reason: CONFLICT.refused('deactivated or closed') });
      if (dryRun) expect(of(free.id)).to.deep.include({ action: 'link', email: 'free@example.com' });
    }
    expect((await server.registry.accounts.findByEmail('free@example.com'))?.password_hash).to.equal(null);
    expect(await server.registry.trello.members.findByAccountId(off.id)).to.equal(undefined);

    // Reactivated, the account is an ordinary "log in there" conflict: the status, read by the decision point, made the difference.
    await server.registry.db.query(`UPDATE accounts SET status = 'active' WHERE id = $1`, [off.id]);
    const again: BulkOutcome[] = [];
    await server.registry.trello.bulk.run({ dryRun: true, onOutcome: (o) => again.push(o) });
    expect(again.find((o) => o.memberId === toOff.id)).to.deep.include({ action: 'conflict', reason: CONFLICT.taken });
  });
});
