import { expect } from 'chai';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount } from '../../helpers/factories.ts';
import { importLegacy, legacyMember } from '../../helpers/trello.ts';
import { verifiedDomain } from '../../helpers/sso.ts';
import { bodyContext } from '../../../src/mail/outbox.ts';
import type { BatchWrite, BulkOutcome } from '../../../src/legacy-trello/bulk-migration.ts';

/**
 * The bulk migration writes a batch's links in one transaction (issue 14). What it writes must be
 * what linking member by member wrote: the same accounts, retired addresses, managers, Google
 * identities, events, set-password tokens and mail; and a batch that meets a change made since it
 * was planned is linked member by member, so one member never blocks the others.
 */
describe('legacy Trello accounts: the bulk migration writes batches', () => {
  let server: TestServer;

  beforeEach(async () => {
    await resetDatabase();
    server = await startTestServer();
  });
  afterEach(async () => server.close());

  const v = (address: string, primary = false) => ({ address, verified: true, primary });

  /** Members of every kind the run distinguishes, with the accounts and organization they meet. */
  async function population(): Promise<void> {
    await createAccount(server.registry, { email: 'has-account@example.com' });
    const off = await createAccount(server.registry, { email: 'off@example.com' });
    await server.registry.db.query(`UPDATE accounts SET status = 'deactivated' WHERE id = $1`, [off.id]);
    const admin = await createAccount(server.registry, { email: 'admin@admins.example' });
    const org = await server.registry.organizations.service.create(admin.id, 'Acme');
    if (!org.ok) throw new Error(org.problem);
    await verifiedDomain(server.registry, admin.id, org.organization.id, 'acme.example');
    await importLegacy(server.registry, [
      legacyMember({ id: 'b-01', username: 'plain', emails: [v('plain@example.com', true)] }),
      legacyMember({ id: 'b-02', username: 'u02', fullName: null, emails: [v('two@example.com', true), v('two-old@example.com'), { address: 'two-maybe@example.com', verified: false }] }),
      legacyMember({ id: 'b-03', username: 'u03', enterprise: { id: 'ent_1', name: 'Initech' }, emails: [v('ent@example.com', true)] }),
      legacyMember({ id: 'b-04', username: 'u04', google: { sub: 'g-104', email: 'goo@gmail.com' }, emails: [v('goo@example.com', true), v('goo@gmail.com')] }),
      legacyMember({ id: 'b-05', username: 'u05', passwordHash: null, google: { sub: 'g-105', email: null }, emails: [v('google-only@gmail.com', true)] }),
      // Claimed by the organization holding the verified domain, from its creation.
      legacyMember({ id: 'b-06', username: 'u06', emails: [v('worker@acme.example', true), v('worker-home@example.com')] }),
      // Given a second spelling of its other address below (the import never writes one): linked alone, as before.
      legacyMember({ id: 'b-07', username: 'u07', emails: [v('Mixed.Case@Example.com', true), v('other-case@example.com')] }),
      legacyMember({ id: 'b-08', username: 'u08', emails: [v('shared@example.com', true), v('eight@example.com')] }),
      legacyMember({ id: 'b-09', username: 'u09', emails: [v('shared@example.com', true), v('nine@example.com')] }),
      legacyMember({ id: 'b-10', username: 'u10', emails: [v('has-account@example.com', true)] }),
      legacyMember({ id: 'b-11', username: 'u11', emails: [v('off@example.com', true)] }),
      legacyMember({ id: 'b-12', username: 'u12', emails: [{ address: 'unproven@example.com', verified: false, primary: true }] }),
      legacyMember({ id: 'b-13', username: 'u13', emails: [v('eight@example.com', true), v('nine@example.com')] }),
    ]);
    await server.registry.db.query(`INSERT INTO trello_member_emails (member_id, email, verified, is_primary) VALUES ('b-07', 'Other-Case@example.com', true, false)`);
  }

  /** Everything the links wrote, by member, without generated ids and times. */
  async function snapshot(): Promise<unknown> {
    const { rows } = await server.registry.db.query<{ member_id: string; linked_by: string | null; account: Record<string, unknown> | null }>(
      `SELECT m.member_id, m.linked_by,
              CASE WHEN a.id IS NOT NULL THEN json_build_object(
                'email', a.email, 'verified', a.email_verified, 'name', a.name, 'nickname', a.nickname, 'password', a.password_hash IS NOT NULL,
                'status', a.status, 'managed', a.managed,
                'managers', (SELECT json_agg(json_build_object('kind', am.kind, 'org', o.name, 'enterprise', am.enterprise_id, 'enterpriseName', am.enterprise_name, 'member', am.trello_member_id) ORDER BY am.kind)
                             FROM account_managers am LEFT JOIN organizations o ON o.id = am.organization_id WHERE am.account_id = a.id),
                'retired', (SELECT json_agg(json_build_object('email', r.email, 'reason', r.reason) ORDER BY r.email) FROM retired_emails r WHERE r.account_id = a.id),
                'identities', (SELECT json_agg(json_build_object('provider', i.provider, 'subject', i.subject, 'email', i.email)) FROM account_identities i WHERE i.account_id = a.id),
                'linkEvents', (SELECT count(*) FROM trello_link_events e WHERE e.member_id = m.member_id AND e.account_id = a.id),
                'events', (SELECT json_agg(json_build_object('type', s.type, 'detail', s.detail, 'reason', s.reason, 'ip', s.ip)) FROM security_events s WHERE s.account_id = a.id),
                'tokens', (SELECT json_agg(json_build_object('days', round(extract(epoch FROM t.expires_at - t.created_at) / 86400), 'used', t.used_at IS NOT NULL)) FROM password_reset_tokens t WHERE t.account_id = a.id)
              ) END AS account
       FROM trello_members m LEFT JOIN accounts a ON a.id = m.linked_account_id ORDER BY m.member_id`,
    );
    const mails = await server.registry.db.query<{ id: string; recipient: string; template: string; subject: string; body_sealed: string; status: string }>(
      'SELECT m.id, m.recipient, m.template, m.subject, b.body_sealed, m.status FROM mail_outbox m JOIN mail_outbox_bodies b ON b.mail_id = m.id ORDER BY m.recipient',
    );
    return {
      members: rows,
      mails: mails.rows.map((m) => ({
        recipient: m.recipient, template: m.template, subject: m.subject, status: m.status,
        body: server.registry.box.open(m.body_sealed, bodyContext(m.id)).replace(/token=[\w-]+/g, 'token=…'),
      })),
      accounts: (await server.registry.db.query<{ n: number }>('SELECT count(*)::int AS n FROM accounts')).rows[0]!.n,
    };
  }

  it('writes exactly what linking member by member wrote, for every kind of member', async () => {
    const runs: { outcomes: BulkOutcome[]; writes: BatchWrite[]; state: unknown }[] = [];
    for (const perMember of [true, false]) {
      await resetDatabase();
      await population();
      const outcomes: BulkOutcome[] = [];
      const writes: BatchWrite[] = [];
      await server.registry.trello.bulk.run({ dryRun: false, perMember, batchSize: 7, onOutcome: (o) => outcomes.push(o), onWrite: (w) => writes.push(w) });
      runs.push({ outcomes, writes, state: await snapshot() });
    }
    const [alone, batched] = runs as [typeof runs[0], typeof runs[0]];
    expect(batched.outcomes).to.deep.equal(alone.outcomes);
    expect(batched.state).to.deep.equal(alone.state);
    // The batched run did write batches; only the member whose address is stored otherwise went alone.
    expect(alone.writes.every((w) => w.together === 0)).to.equal(true);
    expect(batched.writes).to.deep.equal([{ together: 6, alone: 1, retried: false }, { together: 2, alone: 0, retried: false }]);
    // And what was written is what the person needs (a sample of the state compared above).
    const state = batched.state as { members: { member_id: string; account: Record<string, unknown> | null }[]; mails: { recipient: string; body: string }[] };
    const of = (id: string) => state.members.find((m) => m.member_id === id)!.account;
    expect(of('b-02')).to.deep.include({ retired: [{ email: 'two-old@example.com', reason: 'trello:b-02' }], name: null });
    expect(of('b-03')).to.deep.include({ managed: true, managers: [{ kind: 'trello_enterprise', org: null, enterprise: 'ent_1', enterpriseName: 'Initech', member: 'b-03' }] });
    expect(of('b-04')).to.deep.include({ identities: [{ provider: 'google', subject: 'g-104', email: 'goo@gmail.com' }] });
    expect(of('b-06')).to.deep.include({ managed: true, managers: [{ kind: 'organization', org: 'Acme', enterprise: null, enterpriseName: null, member: null }] });
    expect(of('b-07')).to.deep.include({ email: 'mixed.case@example.com' });
    expect(of('b-09')).to.deep.include({ email: 'nine@example.com', retired: null });
    expect(of('b-10')).to.equal(null);
    expect(of('b-13')).to.equal(null);
    expect(of('b-01')).to.deep.include({ password: false, verified: true, linkEvents: 1, tokens: [{ days: 30, used: false }], events: [{ type: 'trello.linked', detail: { memberId: 'b-01', method: 'bulk', created: true, retired: 0 }, reason: null, ip: null }] });
    expect(state.mails.filter((m) => m.recipient === 'two@example.com')).to.have.length(1);
    expect(state.mails.find((m) => m.recipient === 'two@example.com')!.body).to.contain('two-old@example.com');
  });

  it('links a batch member by member when a sign-up took one of its addresses after the plan, so the others are linked', async () => {
    await importLegacy(server.registry, [
      legacyMember({ id: 'r-1', emails: [v('r1@example.com', true)] }),
      legacyMember({ id: 'r-2', emails: [v('r2@example.com', true), v('r2-old@example.com')] }),
      legacyMember({ id: 'r-3', emails: [v('r3@example.com', true)] }),
    ]);
    const outcomes: BulkOutcome[] = [];
    const writes: BatchWrite[] = [];
    const summary = await server.registry.trello.bulk.run({
      dryRun: false,
      onPlanned: async () => { await createAccount(server.registry, { email: 'r2-old@example.com' }); },
      onOutcome: (o) => outcomes.push(o),
      onWrite: (w) => writes.push(w),
    });
    expect(writes).to.deep.equal([{ together: 0, alone: 3, retried: true }]);
    expect(summary).to.deep.equal({ examined: 3, linked: 3, conflicts: 0 });
    // r-2 keeps its address; the one taken meanwhile is the new account's, not retired for r-2.
    const r2 = await server.registry.accounts.findByEmail('r2@example.com');
    expect(await server.registry.trello.linking.retiredOf(r2!.id)).to.deep.equal([]);
    expect((await server.registry.db.query('SELECT 1 FROM mail_outbox')).rows).to.have.length(3);
  });

  it('links a member as it is now when a re-import changed it after the plan', async () => {
    const member = legacyMember({ id: 'c-1', fullName: 'Before', emails: [v('c1@example.com', true)] });
    await importLegacy(server.registry, [member, legacyMember({ id: 'c-2', emails: [v('c2@example.com', true)] })]);
    const outcomes: BulkOutcome[] = [];
    const writes: BatchWrite[] = [];
    await server.registry.trello.bulk.run({
      dryRun: false,
      onPlanned: async () => { await importLegacy(server.registry, [{ ...member, fullName: 'After' }]); },
      onOutcome: (o) => outcomes.push(o),
      onWrite: (w) => writes.push(w),
    });
    expect(writes).to.deep.equal([{ together: 0, alone: 2, retried: true }]);
    expect(outcomes.map((o) => o.action)).to.deep.equal(['link', 'link']);
    expect((await server.registry.accounts.findByEmail('c1@example.com'))?.name).to.equal('After');
  });

  it('reports the member linked meanwhile by a login as already linked, and links the rest of its batch', async () => {
    await importLegacy(server.registry, [
      legacyMember({ id: 'l-1', emails: [v('l1@example.com', true)] }),
      legacyMember({ id: 'l-2', emails: [v('l2@example.com', true)] }),
    ]);
    const outcomes: BulkOutcome[] = [];
    await server.registry.trello.bulk.run({
      dryRun: false,
      onPlanned: async () => { await server.registry.trello.linking.link({ memberId: 'l-1', email: 'l1@example.com', method: 'password' }); },
      onOutcome: (o) => outcomes.push(o),
    });
    expect(outcomes).to.deep.equal([
      { memberId: 'l-1', action: 'conflict', email: 'l1@example.com', reason: 'trello.already_linked' },
      { memberId: 'l-2', action: 'link', email: 'l2@example.com', retire: [] },
    ]);
    expect((await server.registry.trello.linking.findByMemberId('l-1'))?.linked_by).to.equal('password');
    expect((await server.registry.db.query("SELECT 1 FROM mail_outbox WHERE template = 'trello-migrated'")).rows).to.have.length(1);
  });
});
