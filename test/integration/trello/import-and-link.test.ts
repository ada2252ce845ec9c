import { expect } from 'chai';
import { Readable } from 'node:stream';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import { createAccount } from '../../helpers/factories.ts';
import { importLegacy, legacyMember } from '../../helpers/trello.ts';
import { importMembers } from '../../../src/legacy-trello/legacy-import.ts';

describe('legacy Trello accounts: import and linking rules', () => {
  let server: TestServer;

  beforeEach(async () => {
    await resetDatabase();
    server = await startTestServer();
  });
  afterEach(async () => server.close());

  const linking = () => server.registry.trello.linking;

  it('imports a file, reports bad lines by number and reason, and imports everything else', async () => {
    const a = legacyMember();
    const b = legacyMember({ emails: [{ address: 'b1@example.com', verified: false, primary: true }, { address: 'b2@example.com', verified: true }] });
    const summary = await importLegacy(server.registry, [a, '{broken', JSON.stringify({ username: 'no-id', emails: [] }), b, JSON.stringify({ ...legacyMember(), emails: [{ address: 'nope' }] }), '']);
    expect(summary.inserted).to.equal(2);
    expect(summary.skipped).to.deep.equal([
      { line: 2, reason: 'invalid JSON' },
      { line: 3, reason: 'missing id' },
      { line: 5, reason: 'emails.0.address: malformed email "nope"' },
    ]);
    const stored = await linking().findByMemberId(b.id);
    expect(stored?.emails.map((e) => e.email).sort()).to.deep.equal(['b1@example.com', 'b2@example.com']);
    expect(stored?.linked_account_id).to.equal(null);
    // Kept apart: no provider account was created.
    expect(await server.registry.accounts.findByEmail('b2@example.com')).to.equal(undefined);
  });

  it('is idempotent: a second run updates the same members and duplicates nothing', async () => {
    const member = legacyMember();
    await importLegacy(server.registry, [member]);
    const again = await importLegacy(server.registry, [{ ...member, fullName: 'Grace B. Hopper', emails: [...member.emails, { address: 'second@example.com' }] }]);
    expect(again).to.deep.include({ inserted: 0, updated: 1 });
    const db = await testDatabase();
    expect((await db.query('SELECT 1 FROM trello_members WHERE member_id = $1', [member.id])).rows).to.have.length(1);
    const stored = await linking().findByMemberId(member.id);
    expect(stored?.full_name).to.equal('Grace B. Hopper');
    expect(stored?.emails).to.have.length(2);
  });

  it('streams: thousands of lines in batches, each batch its own transaction', async () => {
    let produced = 0;
    const lines = Readable.from((function* () {
      for (let i = 0; i < 3000; i += 1) {
        produced += 1;
        yield `${JSON.stringify({ id: `bulk-${i}`, username: `u${i}`, emails: [{ address: `bulk-${i}@example.com`, verified: true }] })}\n`;
      }
    })());
    const progress: number[] = [];
    const summary = await importMembers({ db: server.registry.db, trelloMembers: server.registry.trello.members, clock: server.registry.clock }, lines, { batchSize: 1000, onProgress: (n) => progress.push(n) });
    expect(produced).to.equal(3000);
    expect(summary.inserted).to.equal(3000);
    expect(progress).to.deep.equal([1000, 2000, 3000]);
  });

  it('turns every constraint a line breaks into a reported line, never an aborted import', async () => {
    const run = (lines: (Record<string, unknown> | string)[], batchSize: number) => importMembers(
      { db: server.registry.db, trelloMembers: server.registry.trello.members, clock: server.registry.clock },
      Readable.from([lines.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join('\n')]),
      { batchSize },
    );
    const a = legacyMember({ google: { sub: 'sub-shared', email: 'a@gmail.com' } });
    const b = legacyMember({ google: { sub: 'sub-shared', email: 'b@gmail.com' } });
    const c = legacyMember({ google: { sub: 'sub-c' } });
    const d = legacyMember({ google: { sub: 'sub-c' } });
    const after = legacyMember();
    // b claims a's subject in another batch, d claims c's in the same batch; a comes back; a NUL.
    const summary = await run([a, c, d, b, { ...a, fullName: 'Again' }, { ...legacyMember(), username: 'nul\u0000' }, after], 3);
    expect(summary.skipped).to.deep.equal([{ line: 6, reason: 'a value contains a NUL character (\\u0000)' }]);
    expect(summary.flagged).to.deep.equal([
      { line: 3, reason: `google.sub is already member ${c.id}'s: imported without it` },
      { line: 4, reason: `google.sub is already member ${a.id}'s: imported without it` },
      { line: 5, reason: `id ${a.id} already on an earlier line: this line replaces it` },
    ]);
    for (const m of [a, b, c, d, after]) expect(await linking().findByMemberId(m.id), m.id).to.not.equal(undefined);
    expect((await linking().findByGoogleSub('sub-shared'))?.member_id).to.equal(a.id);
    expect((await linking().findByGoogleSub('sub-c'))?.member_id).to.equal(c.id);
    expect((await linking().findByMemberId(b.id))?.google_sub).to.equal(null);
    expect((await linking().findByMemberId(a.id))?.full_name).to.equal('Again');

    // Against what an earlier run stored, and a repeated id within one batch.
    const e = legacyMember({ google: { sub: 'sub-shared' } });
    const later = await run([e, e], 10);
    expect(later.skipped).to.deep.equal([]);
    expect(later.flagged).to.deep.equal([
      { line: 2, reason: `id ${e.id} already on line 1: this line replaces it` },
      { line: 2, reason: `google.sub is already member ${a.id}'s: imported without it` },
    ]);
    expect(await linking().findByMemberId(e.id)).to.not.equal(undefined);
  });

  it('reports a date the database cannot store (year 0000, past 9999 in UTC) as a bad line, and imports the rest of its batch', async () => {
    const lines = [
      legacyMember(),
      legacyMember({ emails: [{ address: 'year0@example.com', verified: true, primary: true, addedAt: '0000-06-01T00:00:00Z' }] }),
      legacyMember({ emails: [{ address: 'year10000@example.com', verified: true, primary: true, lastUsedAt: '9999-12-31T23:00:00-05:00' }] }),
      legacyMember({ emails: [{ address: 'year1@example.com', verified: true, primary: true, addedAt: '0001-01-01T00:00:00Z' }] }),
    ];
    const summary = await importMembers(
      { db: server.registry.db, trelloMembers: server.registry.trello.members, clock: server.registry.clock },
      Readable.from([lines.map((m) => JSON.stringify(m)).join('\n')]),
      { batchSize: 10 },
    );
    expect(summary.skipped.map((s) => s.line)).to.deep.equal([2, 3]);
    for (const s of summary.skipped) expect(s.reason).to.match(/date out of range/);
    for (const m of [lines[0]!, lines[3]!]) expect(await linking().findByMemberId(m.id), m.id).to.not.equal(undefined);
  });

  it('writes a batch whose checks changed a member in one transaction, not line by line', async () => {
    const a = legacyMember({ google: { sub: 'sub-one-tx' } });
    const b = legacyMember({ google: { sub: 'sub-one-tx' } });
    let transactions = 0;
    const db = { ...server.registry.db, transaction: <T>(fn: Parameters<typeof server.registry.db.transaction<T>>[0]) => { transactions += 1; return server.registry.db.transaction(fn); } };
    const summary = await importMembers({ db, trelloMembers: server.registry.trello.members, clock: server.registry.clock },
      Readable.from([[a, b].map((m) => JSON.stringify(m)).join('\n')]));
    expect(summary.flagged).to.deep.equal([{ line: 2, reason: `google.sub is already member ${a.id}'s: imported without it` }]);
    // The batch, then the final ANALYZE's sampling one after the first batch.
    expect(transactions).to.equal(2);
    expect((await linking().findByMemberId(b.id))?.google_sub).to.equal(null);
  });

  it('flags an address verified on two unlinked members, and keeps it on both', async () => {
    const first = legacyMember({ emails: [{ address: 'family@example.com', verified: true, primary: true }] });
    const second = legacyMember({ emails: [{ address: 'Family@example.com', verified: true }, { address: 'own@example.com', verified: true }] });
    const unverified = legacyMember({ emails: [{ address: 'family@example.com', verified: false }, { address: 'third@example.com', verified: true }] });
    const summary = await importLegacy(server.registry, [first, second, unverified]);
    expect(summary.flagged).to.deep.equal([
      { line: 1, reason: `address family@example.com is also verified on member ${second.id}: whose Trello password matches at login gets it` },
      { line: 2, reason: `address family@example.com is also verified on member ${first.id}: whose Trello password matches at login gets it` },
    ]);
    expect((await linking().findByEmail('family@example.com')).map((m) => m.member_id).sort()).to.deep.equal([first.id, second.id, unverified.id].sort());
  });

  it('links in one transaction: one address kept, the others retired for the account, the member marked linked', async () => {
    const member = legacyMember({
      emails: [
        { address: 'kept@example.com', verified: true, primary: true },
        { address: 'old-one@example.com', verified: true, lastUsedAt: '2020-01-01T00:00:00Z' },
        { address: 'unverified@example.com', verified: false },
      ],
      google: { sub: 'google-123', email: 'gh@gmail.com' },
    });
    await importLegacy(server.registry, [member]);
    const result = await linking().link({ memberId: member.id, email: 'kept@example.com', method: 'password', passwordHash: 'argon2-hash-placeholder' });
    expect(result.ok).to.equal(true);
    if (!result.ok) return;
    expect(result.created).to.equal(true);
    expect(result.account.email).to.equal('kept@example.com');
    expect(result.account.email_verified).to.equal(true);
    // Only verified addresses are retired (reserved): an unverified one may be somebody else's.
    expect(result.retired).to.deep.equal(['old-one@example.com']);
    const stored = await linking().findByMemberId(member.id);
    expect(stored).to.include({ linked_account_id: result.account.id, linked_by: 'password' });
    expect(await linking().retiredOf(result.account.id)).to.deep.equal(['old-one@example.com']);
    expect(await server.registry.accountIdentities.findIdentity('google', 'google-123')).to.deep.equal({ account_id: result.account.id });
    expect(await linking().memberIdOf(result.account.id)).to.equal(member.id);
    const events = (await server.registry.events.page(result.account.id)).events;
    expect(events[0]).to.deep.include({ type: 'trello.linked' });
    const db = await testDatabase();
    expect((await db.query('SELECT 1 FROM trello_link_events WHERE member_id = $1', [member.id])).rows).to.have.length(1);
  });

  it('refuses an unverified address of the member, and never puts the member’s Google sign-in on an existing account', async () => {
    const victim = await createAccount(server.registry, { email: 'victim@example.com' });
    const member = legacyMember({ emails: [{ address: 'attacker@example.com', verified: true, primary: true }, { address: 'claimed@example.com', verified: false }], google: { sub: 'attacker-google', email: 'attacker@gmail.com' } });
    await importLegacy(server.registry, [member]);
    expect(await linking().link({ memberId: member.id, email: 'claimed@example.com', method: 'password' })).to.deep.equal({ ok: false, problem: 'trello.email_not_theirs' });
    const linked = await linking().link({ memberId: member.id, email: victim.email, method: 'manual', existingAccountId: victim.id });
    expect(linked.ok).to.equal(true);
    expect(await server.registry.accountIdentities.findIdentity('google', 'attacker-google')).to.equal(undefined);
    const second = legacyMember();
    await importLegacy(server.registry, [second]);
    expect(await linking().link({ memberId: second.id, email: victim.email, method: 'manual', existingAccountId: victim.id })).to.deep.equal({ ok: false, problem: 'trello.account_has_member' });
  });

  it('is irreversible: a second link is refused, and so is re-importing over the link', async () => {
    const member = legacyMember();
    await importLegacy(server.registry, [member]);
    const first = await linking().link({ memberId: member.id, email: member.emails[0]!.address, method: 'bulk' });
    expect(first.ok).to.equal(true);
    expect(await linking().link({ memberId: member.id, email: member.emails[0]!.address, method: 'bulk' })).to.deep.equal({ ok: false, problem: 'trello.already_linked' });
    await importLegacy(server.registry, [{ ...member, emails: [{ address: 'someone-else@example.com', verified: true }] }]);
    const stored = await linking().findByMemberId(member.id);
    expect(stored?.linked_account_id).to.equal(first.ok ? first.account.id : 'x');
    expect(stored?.emails.map((e) => e.email)).to.deep.equal([member.emails[0]!.address]);
  });

  it('refuses an address that belongs to another account unless that account is proven, then links to it', async () => {
    const existing = await createAccount(server.registry, { email: 'taken@example.com' });
    const member = legacyMember({ emails: [{ address: 'taken@example.com', verified: true, primary: true }, { address: 'spare@example.com', verified: true }] });
    await importLegacy(server.registry, [member]);
    expect(await linking().link({ memberId: member.id, email: 'taken@example.com', method: 'password' })).to.deep.equal({ ok: false, problem: 'trello.email_taken' });
    expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(null);
    const proven = await linking().link({ memberId: member.id, email: 'taken@example.com', method: 'password', existingAccountId: existing.id });
    expect(proven.ok && proven.account.id).to.equal(existing.id);
    expect(proven.ok && proven.created).to.equal(false);
    expect(await linking().retiredOf(existing.id)).to.deep.equal(['spare@example.com']);
  });

  it('never retires an address that is another account’s, and refuses an address not on the member', async () => {
    const other = await createAccount(server.registry, { email: 'belongs-to-other@example.com' });
    const member = legacyMember({ emails: [{ address: 'mine@example.com', verified: true, primary: true }, { address: 'belongs-to-other@example.com', verified: true }] });
    await importLegacy(server.registry, [member]);
    expect(await linking().link({ memberId: member.id, email: 'stranger@example.com', method: 'password' })).to.deep.equal({ ok: false, problem: 'trello.email_not_theirs' });
    const result = await linking().link({ memberId: member.id, email: 'mine@example.com', method: 'password' });
    expect(result.ok && result.retired).to.deep.equal([]);
    expect(await linking().retiredOf(other.id)).to.deep.equal([]);
  });

  it('reserves retired addresses: no sign-up, no account, no email change can take them', async () => {
    const member = legacyMember({ emails: [{ address: 'keep@example.com', verified: true, primary: true }, { address: 'retired@example.com', verified: true }] });
    await importLegacy(server.registry, [member]);
    await linking().link({ memberId: member.id, email: 'keep@example.com', method: 'bulk' });
    let refused: unknown;
    try {
      await server.registry.accounts.create({ email: 'RETIRED@example.com', password: 'a long enough password' });
    } catch (err) {
      refused = err;
    }
    expect((refused as { code?: string })?.code).to.equal('account.email_taken');
  });

  it('lets only one of two racing links win, leaving no half-linked state', async () => {
    const member = legacyMember();
    await importLegacy(server.registry, [member]);
    const results = await Promise.all([1, 2, 3].map(() => linking().link({ memberId: member.id, email: member.emails[0]!.address, method: 'bulk' })));
    expect(results.filter((r) => r.ok)).to.have.length(1);
    const db = await testDatabase();
    expect((await db.query('SELECT 1 FROM accounts WHERE lower(email) = lower($1)', [member.emails[0]!.address])).rows).to.have.length(1);
    expect((await db.query('SELECT 1 FROM trello_link_events WHERE member_id = $1', [member.id])).rows).to.have.length(1);
  });

  it('rolls the whole link back when anything in it fails', async () => {
    const member = legacyMember({ emails: [{ address: 'atomic@example.com', verified: true, primary: true }, { address: 'atomic-2@example.com', verified: true }] });
    await importLegacy(server.registry, [member]);
    let failed = false;
    try {
      await linking().link({ memberId: member.id, email: 'atomic@example.com', method: 'bulk', inTransaction: async () => { throw new Error('killed mid-link'); } });
    } catch {
      failed = true;
    }
    expect(failed).to.equal(true);
    expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(null);
    expect(await server.registry.accounts.findByEmail('atomic@example.com')).to.equal(undefined);
    expect(await linking().findRetired('atomic-2@example.com')).to.equal(undefined);
  });
});
