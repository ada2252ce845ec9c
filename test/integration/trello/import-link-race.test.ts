import { expect } from 'chai';
import { Readable } from 'node:stream';
import { AsyncResource } from 'node:async_hooks';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase, serverUrl } from '../../helpers/db.ts';
import { legacyMember, importLegacy } from '../../helpers/trello.ts';
import { importMembers, REMARKS_KEPT } from '../../../src/legacy-trello/legacy-import.ts';

/**
 * A member linked (here by a login's link) after the import's precheck read it as unlinked, but
 * before the batch's upsert: the upsert changes the linked member's Enterprise (allowed for a
 * linked member), and the account's managers (decision 0030) must follow in the same batch, not
 * only for the members the precheck saw linked. The race needs a second connection: on the
 * embedded engine (one connection) the link would wait for the import's transaction, so that case
 * runs on the server only.
 */
describe('legacy Trello import: a member linked between the batch\'s precheck and its upsert', () => {
  let server: TestServer;
  beforeEach(async () => { await resetDatabase(); server = await startTestServer(); });
  afterEach(async () => server.close());

  it('the account follows the Enterprise the import gives the member', async function () {
    if (!serverUrl) this.skip();
    const line = legacyMember({ id: 'race-1', username: 'racer', enterprise: { id: 'ent_old', name: 'Old Corp' },
      emails: [{ address: 'racer@example.com', verified: true, primary: true }] });
    await importLegacy(server.registry, [line]);

    const members = server.registry.trello.members;
    let linkedAccount: string | undefined;
    // Bound here, outside the import's transaction: another request's link, on its own connection.
    const loginLinks = AsyncResource.bind(() => server.registry.trello.linking.link({ memberId: 'race-1', email: 'racer@example.com', method: 'password' }));
    const racing = {
      ...members,
      async importPrecheck(...args: Parameters<typeof members.importPrecheck>) {
        const answer = await members.importPrecheck(...args);
        // A login links the member now, in its own transaction (the import's has locked nothing yet).
        const result = await loginLinks();
        if (!result.ok) throw new Error(result.problem);
        linkedAccount = result.account.id;
        return answer;
      },
    };
    // The re-import drops the Enterprise.
    const { enterprise: _e, ...without } = line as Record<string, unknown>;
    await importMembers({ db: server.registry.db, trelloMembers: racing, clock: server.registry.clock }, Readable.from([JSON.stringify(without)]));

    const member = await server.registry.db.query('SELECT enterprise_id, linked_account_id FROM trello_members WHERE member_id = $1', ['race-1']);
    expect(member.rows[0]).to.deep.include({ enterprise_id: null, linked_account_id: linkedAccount });
    const managers = await server.registry.db.query(`SELECT kind, enterprise_id FROM account_managers WHERE account_id = $1`, [linkedAccount]);
    expect(managers.rows, 'the member has no Enterprise any more; its account must not stay managed by the old one').to.deep.equal([]);
  });
  it('keeps the first REMARKS_KEPT skipped lines in the summary, counts them all and reports each one', async () => {
    const bad = REMARKS_KEPT + 25;
    const lines = Array.from({ length: bad }, (_, i) => JSON.stringify({ ...legacyMember({ id: `bad-${i}`, username: `bad${i}` }), emails: [{ address: `user${i}@example..com`, verified: true, primary: true }] }));
    let reported = 0;
    const summary = await importMembers({ db: server.registry.db, trelloMembers: server.registry.trello.members, clock: server.registry.clock }, Readable.from([`${lines.join('\n')}\n`]), { onSkip: () => { reported += 1; } });
    expect(summary.skippedCount).to.equal(bad);
    expect(reported).to.equal(bad);
    expect(summary.skipped).to.have.length(REMARKS_KEPT);
    expect(summary.skipped[0]!.line).to.equal(1);
  });
});
