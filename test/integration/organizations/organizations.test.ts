import { expect } from 'chai';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import { createAccount } from '../../helpers/factories.ts';
import { createOrganizationQueries } from '../../../src/persistence/queries/organizations.ts';
import type { OrganizationService } from '../../../src/organizations/organizations.ts';

/** Organizations and authorization in the service: an admin of one organization cannot touch another. */
describe('organizations: membership and authorization', () => {
  let server: TestServer;
  let service: OrganizationService;

  beforeEach(async () => {
    await resetDatabase();
    server = await startTestServer();
    service = server.registry.organizations.service;
  });
  afterEach(() => server.close());

  it('makes the creator the admin, and lists every organization an account belongs to', async () => {
    const ada = await createAccount(server.registry);
    const a = await service.create(ada.id, '  Acme   Corp ');
    const b = await service.create(ada.id, 'Beta');
    if (!a.ok || !b.ok) throw new Error('not created');
    expect(a.organization).to.include({ name: 'Acme Corp', role: 'admin' });
    expect(a.organization.id).to.match(/^org_[A-Za-z0-9_-]{22}$/);
    expect((await service.listFor(ada.id)).map((o) => [o.name, o.role])).to.deep.equal([['Acme Corp', 'admin'], ['Beta', 'admin']]);
    expect(await service.listFor((await createAccount(server.registry)).id)).to.deep.equal([]);
  });

  it('refuses empty, overlong and control-character names, and inactive accounts', async () => {
    const ada = await createAccount(server.registry);
    for (const name of ['', '   ', 'x'.repeat(101), 'Acme\u0000', 42]) expect(await service.create(ada.id, name)).to.deep.equal({ ok: false, problem: 'organization.name_invalid' });
    const db = await testDatabase();
    await db.query(`UPDATE accounts SET status = 'deactivated' WHERE id = $1`, [ada.id]);
    expect(await service.create(ada.id, 'Acme')).to.deep.equal({ ok: false, problem: 'account.inactive' });
    expect(await service.create('acc_nobody', 'Acme')).to.deep.equal({ ok: false, problem: 'account.inactive' });
  });

  it('keeps each organization to its own admins: another organization\'s admin gets not found, a member gets forbidden', async () => {
    const adminA = await createAccount(server.registry);
    const adminB = await createAccount(server.registry);
    const memberB = await createAccount(server.registry);
    const orgA = await service.create(adminA.id, 'A');
    const orgB = await service.create(adminB.id, 'B');
    if (!orgA.ok || !orgB.ok) throw new Error('not created');
    const a = orgA.organization.id;
    const b = orgB.organization.id;
    const db = await testDatabase();
    await createOrganizationQueries(db).addMember(db, { organizationId: b, accountId: memberB.id, role: 'member', addedBy: adminB.id, now: new Date() });
    const bDomain = await service.addDomain(adminB.id, b, 'b-corp.test');
    const aDomain = await service.addDomain(adminA.id, a, 'a-corp.test');
    if (!bDomain.ok || !aDomain.ok) throw new Error('not added');

    // Admin of A on B: as if B did not exist.
    expect(await service.get(adminA.id, b)).to.deep.equal({ ok: false, problem: 'organization.not_found' });
    expect(await service.addDomain(adminA.id, b, 'a-claims-b.test')).to.deep.equal({ ok: false, problem: 'organization.not_found' });
    expect(await service.listDomains(adminA.id, b)).to.deep.equal({ ok: false, problem: 'organization.not_found' });
    expect(await service.domainState(adminA.id, b, bDomain.domain.id)).to.deep.equal({ ok: false, problem: 'organization.not_found' });
    expect(await service.verifyDomain(adminA.id, b, bDomain.domain.id)).to.deep.equal({ ok: false, problem: 'organization.not_found' });
    // B's domain through A's own organization: not A's domain.
    expect(await service.domainState(adminA.id, a, bDomain.domain.id)).to.deep.equal({ ok: false, problem: 'domain.not_found' });
    expect(await service.verifyDomain(adminA.id, a, bDomain.domain.id)).to.deep.equal({ ok: false, problem: 'domain.not_found' });
    expect(await service.get(adminA.id, 'org_does_not_exist')).to.deep.equal({ ok: false, problem: 'organization.not_found' });
    expect(await service.get(adminA.id, 'x'.repeat(10_000))).to.deep.equal({ ok: false, problem: 'organization.not_found' });

    // A member of B may look, not act.
    expect(await service.get(memberB.id, b)).to.deep.include({ ok: true });
    const listed = await service.listDomains(memberB.id, b);
    expect(listed.ok && listed.domains.map((d) => d.domain)).to.deep.equal(['b-corp.test']);
    expect(await service.addDomain(memberB.id, b, 'member.test')).to.deep.equal({ ok: false, problem: 'organization.forbidden' });
    expect(await service.verifyDomain(memberB.id, b, bDomain.domain.id)).to.deep.equal({ ok: false, problem: 'organization.forbidden' });

    // Nothing of A's request reached B.
    const bDomains = await service.listDomains(adminB.id, b);
    expect(bDomains.ok && bDomains.domains.map((d) => d.domain)).to.deep.equal(['b-corp.test']);
  });

  it('allows two managers per account, one of each kind, and no other shape', async () => {
    const admin = await createAccount(server.registry);
    const org = await service.create(admin.id, 'Acme');
    if (!org.ok) throw new Error('not created');
    const account = await createAccount(server.registry);
    const db = await testDatabase();
    await db.query(`INSERT INTO trello_members (member_id, username, enterprise_id, enterprise_name, linked_account_id, imported_at, updated_at)
                    VALUES ('m1', 'ada', 'ent-1', 'Acme Enterprise', $1, now(), now())`, [account.id]);
    const { managers } = server.registry.organizations;
    await db.transaction(async (tx) => {
      await managers.setTrelloEnterprise(tx, { accountId: account.id, enterpriseId: 'ent-1', enterpriseName: 'Acme Enterprise', memberId: 'm1', now: new Date() });
      expect(await managers.claimForOrganization(tx, { accountId: account.id, organizationId: org.organization.id, domainId: null as unknown as string, now: new Date() })).to.equal(true);
      expect(await managers.claimForOrganization(tx, { accountId: account.id, organizationId: org.organization.id, domainId: null as unknown as string, now: new Date() }), 'one organization at most').to.equal(false);
    });
    expect((await managers.ofAccount(account.id)).map((m) => [m.kind, m.manager_name])).to.deep.equal([['organization', 'Acme'], ['trello_enterprise', 'Acme Enterprise']]);
    const mixed = await db.query(`INSERT INTO account_managers (account_id, kind, organization_id, enterprise_id, since) VALUES ($1, 'trello_enterprise', $2, 'ent-2', now())`, [
      (await createAccount(server.registry)).id, org.organization.id,
    ]).catch((err: unknown) => err);
    expect(mixed).to.have.property('code', '23514');
  });

  it('keeps the account’s managed flag in step with its managers, so the decision point reads them only when there are some', async () => {
    const admin = await createAccount(server.registry);
    const org = await service.create(admin.id, 'Flagged');
    if (!org.ok) throw new Error('not created');
    const account = await createAccount(server.registry);
    const db = await testDatabase();
    await db.query(`INSERT INTO trello_members (member_id, username, enterprise_id, enterprise_name, linked_account_id, imported_at, updated_at)
                    VALUES ('m9', 'grace', 'ent-9', 'Flagged Enterprise', $1, now(), now())`, [account.id]);
    const flag = async () => (await db.query<{ managed: boolean }>('SELECT managed FROM accounts WHERE id = $1', [account.id])).rows[0]!.managed;
    const managersOf = async () => (await server.registry.policy.loadForTokens(account.id))!.subject.managers;
    expect(await flag()).to.equal(false);
    expect(await managersOf()).to.deep.equal([]);
    const { managers } = server.registry.organizations;
    await db.transaction(async (tx) => {
      await managers.claimForOrganization(tx, { accountId: account.id, organizationId: org.organization.id, domainId: null as unknown as string, now: new Date() });
      await managers.setTrelloEnterprise(tx, { accountId: account.id, enterpriseId: 'ent-9', enterpriseName: 'Flagged Enterprise', memberId: 'm9', now: new Date() });
    });
    expect(await flag()).to.equal(true);
    expect(await managersOf()).to.deep.equal([{ kind: 'organization', id: org.organization.id, name: 'Flagged' }, { kind: 'trello_enterprise', id: 'ent-9', name: 'Flagged Enterprise' }]);
    await db.query(`DELETE FROM account_managers WHERE account_id = $1 AND kind = 'organization'`, [account.id]);
    expect(await flag(), 'one manager left').to.equal(true);
    await db.query('DELETE FROM account_managers WHERE account_id = $1', [account.id]);
    expect(await flag(), 'none left').to.equal(false);
    expect(await managersOf()).to.deep.equal([]);
  });
});
