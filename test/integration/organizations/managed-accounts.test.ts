import { expect } from 'chai';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { startDns, type TestDns } from '../../helpers/dns-server.ts';
import { startSmtp, type TestSmtp } from '../../helpers/smtp.ts';
import { PageDriver } from '../../helpers/login-driver.ts';
import { startLogoutReceiver } from '../../helpers/receiver.ts';
import { signInToAccount, type Agent } from '../../helpers/account-pages.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { importLegacy, legacyMember } from '../../helpers/trello.ts';
import type { Clock } from '../../../src/shared/clock.ts';
import type { ManagedAccounts } from '../../../src/organizations/managed-accounts.ts';
import type { OrganizationService } from '../../../src/organizations/organizations.ts';

/**
 * Managed accounts end to end (issue 12): domains verified against a real DNS server on loopback,
 * mail through a real SMTP server, logins through the real pages and openid-client, back-channel
 * logout received by a real relying-party endpoint.
 */
describe('organizations: managed accounts', () => {
  let dns: TestDns;
  let smtp: TestSmtp;
  let receiver: Awaited<ReturnType<typeof startLogoutReceiver>>;
  let server: TestServer;
  let service: OrganizationService;
  let managed: ManagedAccounts;
  let offset = 0;
  const clock: Clock = { now: () => Date.now() + offset };

  before(async () => {
    dns = await startDns();
    receiver = await startLogoutReceiver();
  });
  after(async () => {
    await dns.close();
    await receiver.close();
  });

  beforeEach(async () => {
    await resetDatabase();
    dns.txt.clear();
    offset = 0;
    receiver.deliveries.length = 0;
    smtp = await startSmtp();
    server = await startTestServer({ clock, overrides: { smtpUrl: smtp.url, dnsServers: [dns.server], domainVerification: { httpScheme: 'http', httpPort: 9, timeoutSeconds: 2, recheckIntervalSeconds: 3600 } } });
    service = server.registry.organizations.service;
    managed = server.registry.organizations.managedAccounts;
  });
  afterEach(async () => {
    await server.close();
    await smtp.close();
  });

  /** An organization whose admin (on another domain) proved `domain` by its TXT record. */
  async function verifiedOrg(domain: string, name = 'Acme') {
    const admin = await createAccount(server.registry, { email: `admin-${Math.random().toString(36).slice(2)}@admins.example` });
    const created = await service.create(admin.id, name);
    if (!created.ok) throw new Error(created.problem);
    const org = created.organization;
    const domainId = await addVerifiedDomain(admin.id, org.id, domain);
    return { admin, org, domainId };
  }

  async function addVerifiedDomain(adminId: string, orgId: string, domain: string) {
    const added = await service.addDomain(adminId, orgId, domain);
    if (!added.ok) throw new Error(added.problem);
    dns.txt.set(added.domain.domain, [[added.domain.instructions.txtValue]]);
    const verified = await service.verifyDomain(adminId, orgId, added.domain.id);
    if (!verified.ok) throw new Error(verified.problem);
    return added.domain.id;
  }

  /** Posts a settings form whose page shows no form (a managed account): the CSRF token from another settings page. */
  async function submit(agent: Agent, _formPath: string, path: string, fields: Record<string, string>) {
    const page = await agent.get('/account/password');
    return agent.post(path).type('form').send({ _csrf: csrfFrom(page.text), ...fields });
  }

  const managersOf = async (accountId: string) => (await server.registry.policy.load(accountId))!.subject.managers;

  describe('claiming', () => {
    it('previews the accounts on a verified domain, then claims them in one act and tells each by mail', async () => {
      const ada = await createAccount(server.registry, { email: 'ada@acme.test', name: 'Ada' });
      const bob = await createAccount(server.registry, { email: 'bob@ACME.test', name: 'Bob' });
      const other = await createAccount(server.registry, { email: 'eve@acme.test.example' });
      const { admin, org, domainId } = await verifiedOrg('acme.test');

      const preview = await managed.previewClaim(admin.id, org.id, domainId, { limit: 1 });
      if (!preview.ok) throw new Error(preview.problem);
      expect(preview.count).to.equal(2);
      expect(preview.accounts.map((a) => a.email)).to.deep.equal(['ada@acme.test']);
      const rest = await managed.previewClaim(admin.id, org.id, domainId, { limit: 1, after: preview.next });
      expect(rest.ok && rest.accounts.map((a) => a.email)).to.deep.equal(['bob@acme.test']);
      expect(await managersOf(ada.id), 'a preview changes nothing').to.deep.equal([]);

      expect(await managed.claim(admin.id, org.id, domainId)).to.deep.equal({ ok: true, claimed: 2 });
      expect(await managersOf(ada.id)).to.deep.equal([{ kind: 'organization', id: org.id, name: 'Acme' }]);
      expect(await managersOf(bob.id)).to.deep.equal([{ kind: 'organization', id: org.id, name: 'Acme' }]);
      expect(await managersOf(other.id), 'another domain, even one ending alike').to.deep.equal([]);

      await server.registry.mail.delivery.deliverDue();
      const mail = await smtp.lastTo('ada@acme.test', 'Your organization now manages your Lanyard account');
      expect(mail.text).to.contain('Acme has verified that it owns acme.test');
      expect(mail.text).to.contain(admin.email);
      expect(smtp.messages.some((m) => m.text?.includes('eve@'))).to.equal(false);

      // Nothing left to claim; a second claim claims nobody and mails nobody.
      const after = await managed.previewClaim(admin.id, org.id, domainId);
      expect(after.ok && after.count).to.equal(0);
      expect(await managed.claim(admin.id, org.id, domainId)).to.deep.equal({ ok: true, claimed: 0 });
      // The organization's audit trail has both claims, with the actor and the domain.
      const { rows } = await server.registry.db.query<{ actor_id: string; target_id: string; target_label: string; detail: { claimed: number } }>(
        `SELECT actor_id, target_id, target_label, detail FROM organization_events WHERE organization_id = $1 AND action = 'accounts.claimed' ORDER BY id`, [org.id]);
      expect(rows.map((r) => [r.actor_id, r.target_id, r.target_label, r.detail.claimed])).to.deep.equal([[admin.id, domainId, 'acme.test', 2], [admin.id, domainId, 'acme.test', 0]]);
    });

    it('claims nothing from a pending domain, and nothing new from a failing one, whose accounts stay managed', async () => {
      const { admin, org, domainId } = await verifiedOrg('acme.test');
      const pending = await service.addDomain(admin.id, org.id, 'pending.test');
      if (!pending.ok) throw new Error(pending.problem);
      expect(await managed.previewClaim(admin.id, org.id, pending.domain.id)).to.deep.equal({ ok: false, problem: 'domain.not_verified' });
      expect(await managed.claim(admin.id, org.id, pending.domain.id)).to.deep.equal({ ok: false, problem: 'domain.not_verified' });

      const early = await createAccount(server.registry, { email: 'early@acme.test' });
      expect(await managersOf(early.id), 'created after verification: managed from creation').to.have.length(1);
      // The re-check fails: claims freeze, nobody is released.
      dns.txt.clear();
      offset = 2 * 3600 * 1000;
      await server.registry.organizations.recheck.recheckDue();
      expect((await service.domainState(admin.id, org.id, domainId)).ok && (await service.domainState(admin.id, org.id, domainId) as { domain: { state: string } }).domain.state).to.equal('failing');
      const late = await createAccount(server.registry, { email: 'late@acme.test' });
      expect(await managersOf(late.id), 'a failing domain claims no new account').to.deep.equal([]);
      expect(await managed.previewClaim(admin.id, org.id, domainId)).to.deep.equal({ ok: false, problem: 'domain.claims_frozen' });
      expect(await managed.claim(admin.id, org.id, domainId)).to.deep.equal({ ok: false, problem: 'domain.claims_frozen' });
      expect(await managersOf(early.id), 'never released by a failing check').to.deep.equal([{ kind: 'organization', id: org.id, name: 'Acme' }]);
    });

    it('manages new accounts on a verified domain from creation: sign-up, Google, Trello linking and the bulk migration', async () => {
      const { org } = await verifiedOrg('acme.test');
      const expected = [{ kind: 'organization', id: org.id, name: 'Acme' }];

      // Sign-up: code by mail, then the details.
      const registration = server.registry.registration;
      await registration.start('uid-signup', 'new@acme.test');
      await server.registry.mail.delivery.deliverDue();
      const code = /\b(\d{6})\b/.exec((await smtp.lastTo('new@acme.test')).text ?? '')![1]!;
      expect(await registration.verifyCode('uid-signup', code)).to.equal('verified');
      const signedUp = await registration.complete('uid-signup', { name: 'New Person', password: PASSWORD });
      if (!signedUp.ok) throw new Error(signedUp.problem);
      expect(await managersOf(signedUp.account.id)).to.deep.equal(expected);

      // Google's first login creates the account.
      const google = await server.registry.federated.resolveGoogle({ sub: 'google-sub-1', email: 'gina@acme.test', emailVerified: true, name: 'Gina' });
      if (!google.ok) throw new Error(google.problem);
      expect(google.how).to.equal('created');
      expect(await managersOf(google.account.id)).to.deep.equal(expected);

      // Trello: a lazy link (linking service) and the bulk migration.
      const lazy = legacyMember({ emails: [{ address: 'lazy@acme.test', verified: true, primary: true }] });
      const bulk = legacyMember({ emails: [{ address: 'bulk@acme.test', verified: true, primary: true }] });
      const elsewhere = legacyMember({ emails: [{ address: 'someone@elsewhere.test', verified: true, primary: true }] });
      await importLegacy(server.registry, [lazy, bulk, elsewhere]);
      const linked = await server.registry.trello.linking.link({ memberId: lazy.id, email: 'lazy@acme.test', method: 'password' });
      if (!linked.ok) throw new Error(linked.problem);
      expect(await managersOf(linked.account.id)).to.deep.equal(expected);
      await server.registry.trello.bulk.run({ dryRun: false });
      expect(await managersOf((await server.registry.accounts.findByEmail('bulk@acme.test'))!.id)).to.deep.equal(expected);
      expect(await managersOf((await server.registry.accounts.findByEmail('someone@elsewhere.test'))!.id)).to.deep.equal([]);
    });

    it('manages a migrated account with a company address whichever comes first: the migration or the verification', async () => {
      const before = legacyMember({ emails: [{ address: 'first@acme.test', verified: true, primary: true }] });
      await importLegacy(server.registry, [before]);
      await server.registry.trello.bulk.run({ dryRun: false });
      const migratedFirst = (await server.registry.accounts.findByEmail('first@acme.test'))!;
      expect(await managersOf(migratedFirst.id), 'migration alone does not make an account managed').to.deep.equal([]);

      const { admin, org, domainId } = await verifiedOrg('acme.test');
      const preview = await managed.previewClaim(admin.id, org.id, domainId);
      expect(preview.ok && preview.accounts.map((a) => a.id)).to.deep.equal([migratedFirst.id]);
      expect(await managed.claim(admin.id, org.id, domainId)).to.deep.equal({ ok: true, claimed: 1 });
      expect(await managersOf(migratedFirst.id)).to.deep.equal([{ kind: 'organization', id: org.id, name: 'Acme' }]);

      const after = legacyMember({ emails: [{ address: 'second@acme.test', verified: true, primary: true }] });
      await importLegacy(server.registry, [after]);
      await server.registry.trello.bulk.run({ dryRun: false });
      const migratedSecond = (await server.registry.accounts.findByEmail('second@acme.test'))!;
      expect(await managersOf(migratedSecond.id)).to.deep.equal([{ kind: 'organization', id: org.id, name: 'Acme' }]);
    });

    it('claims an address with an internationalised domain, verified in its punycode form', async () => {
      const person = await createAccount(server.registry, { email: 'joerg@bücher.test' });
      const { admin, org, domainId } = await verifiedOrg('Bücher.test');
      const preview = await managed.previewClaim(admin.id, org.id, domainId);
      expect(preview.ok && [preview.domain, preview.count]).to.deep.equal(['xn--bcher-kva.test', 1]);
      expect(await managed.claim(admin.id, org.id, domainId)).to.deep.equal({ ok: true, claimed: 1 });
      expect(await managersOf(person.id)).to.have.length(1);
      const fresh = await createAccount(server.registry, { email: 'anna@bücher.test' });
      expect(await managersOf(fresh.id)).to.have.length(1);
    });
  });

  describe('Trello Enterprise management as a relation', () => {
    it('follows the import: an Enterprise set, renamed or dropped on re-import changes who manages a linked account', async () => {
      const member = legacyMember();
      await importLegacy(server.registry, [member]);
      const linked = await server.registry.trello.linking.link({ memberId: member.id, email: member.emails[0]!.address, method: 'password' });
      if (!linked.ok) throw new Error(linked.problem);
      expect(await managersOf(linked.account.id)).to.deep.equal([]);
      await importLegacy(server.registry, [{ ...member, enterprise: { id: 'ent-1', name: 'Acme Enterprise' } }]);
      expect(await managersOf(linked.account.id)).to.deep.equal([{ kind: 'trello_enterprise', id: 'ent-1', name: 'Acme Enterprise' }]);
      await importLegacy(server.registry, [{ ...member, enterprise: { id: 'ent-1', name: 'Acme Trello' } }]);
      expect(await managersOf(linked.account.id)).to.deep.equal([{ kind: 'trello_enterprise', id: 'ent-1', name: 'Acme Trello' }]);
      await importLegacy(server.registry, [member]);
      expect(await managersOf(linked.account.id)).to.deep.equal([]);
    });

    it('shows both managers, and keeps a Trello Enterprise account from changing its address or closing after linking', async () => {
      const member = legacyMember({ enterprise: { id: 'ent-9', name: 'Acme Enterprise' }, emails: [{ address: 'tina@acme.test', verified: true, primary: true }] });
      await importLegacy(server.registry, [member]);
      const linked = await server.registry.trello.linking.link({ memberId: member.id, email: 'tina@acme.test', method: 'password', passwordHash: await server.registry.hasher.hash(PASSWORD) });
      if (!linked.ok) throw new Error(linked.problem);
      expect(await managersOf(linked.account.id)).to.deep.equal([{ kind: 'trello_enterprise', id: 'ent-9', name: 'Acme Enterprise' }]);

      const { agent, status } = await signInToAccount(server.url, 'tina@acme.test');
      expect(status).to.equal(200);
      const emailPage = await agent.get('/account/email');
      expect(emailPage.text).to.contain('Your Trello Enterprise <strong>Acme Enterprise</strong> manages this account');
      expect(emailPage.text).not.to.contain('action="/account/email"');
      const change = await submit(agent, '/account/email', '/account/email', { email: 'tina@elsewhere.test', password: PASSWORD });
      expect(change.status).to.equal(403);
      const close = await submit(agent, '/account/close', '/account/close', { password: PASSWORD });
      expect(close.status).to.equal(403);
      const account = await server.registry.accounts.findById(linked.account.id);
      expect([account!.email, account!.status]).to.deep.equal(['tina@acme.test', 'active']);
      expect(await server.registry.emailChanges.pending(linked.account.id)).to.equal(undefined);

      // Its company verifies the domain too: two managers, each named.
      const { admin, org, domainId } = await verifiedOrg('acme.test');
      await managed.claim(admin.id, org.id, domainId);
      expect(await managersOf(linked.account.id)).to.deep.equal([
        { kind: 'organization', id: org.id, name: 'Acme' },
        { kind: 'trello_enterprise', id: 'ent-9', name: 'Acme Enterprise' },
      ]);
      const overview = await agent.get('/account');
      expect(overview.text).to.contain('<strong>Acme</strong> manages this account');
      expect(overview.text).to.contain('<strong>Acme Enterprise</strong>');
    });
  });

  describe('restrictions on managed users', () => {
    it('refuses an organization-managed user changing the address or closing the account, and says whom to ask', async () => {
      const { admin, org, domainId } = await verifiedOrg('acme.test');
      const user = await createAccount(server.registry, { email: 'uma@acme.test' });
      expect(domainId).to.be.a('string');
      expect(await managersOf(user.id)).to.deep.equal([{ kind: 'organization', id: org.id, name: 'Acme' }]);
      const { agent } = await signInToAccount(server.url, 'uma@acme.test');
      const emailPage = await agent.get('/account/email');
      expect(emailPage.text).to.contain('<strong>Acme</strong> manages this account: only its admins can change its address');
      expect(emailPage.text).to.contain(admin.email);
      const change = await submit(agent, '/account/email', '/account/email', { email: 'uma@private.test', password: PASSWORD });
      expect(change.status).to.equal(403);
      expect(change.text).to.contain('Your organization manages this account');
      const closePage = await agent.get('/account/close');
      expect(closePage.text).not.to.contain('action="/account/close"');
      const close = await submit(agent, '/account/close', '/account/close', { password: PASSWORD });
      expect(close.status).to.equal(403);
      // The services refuse whatever the HTTP layer does.
      expect(await server.registry.emailChanges.request(user.id, PASSWORD, 'uma@private.test')).to.deep.equal({ ok: false, problem: 'account.managed' });
      expect(await server.registry.accountClosure.close(user.id, PASSWORD)).to.deep.equal({ ok: false, problem: 'account.managed' });
      expect((await server.registry.accounts.findById(user.id))!.status).to.equal('active');
    });

    it('spends a change requested before the account became managed without changing anything', async () => {
      const user = await createAccount(server.registry, { email: 'vic@acme.test' });
      const requested = await server.registry.emailChanges.request(user.id, PASSWORD, 'vic@private.test');
      expect(requested).to.deep.equal({ ok: true, newEmail: 'vic@private.test' });
      await server.registry.mail.delivery.deliverDue();
      const link = /(http\S+\/account\/email\/verify\?token=\S+)/.exec((await smtp.lastTo('vic@private.test')).text ?? '')![1]!;
      const { admin, org, domainId } = await verifiedOrg('acme.test');
      await managed.claim(admin.id, org.id, domainId);
      expect(await server.registry.emailChanges.confirm(new URL(link).searchParams.get('token')!)).to.deep.equal({ ok: false, problem: 'email.link_invalid' });
      expect((await server.registry.accounts.findById(user.id))!.email).to.equal('vic@acme.test');
    });

    it('lets an unmanaged user close the account and change the address as before', async () => {
      const user = await createAccount(server.registry, { email: 'free@private.test' });
      expect(await server.registry.emailChanges.request(user.id, PASSWORD, 'free2@private.test')).to.deep.equal({ ok: true, newEmail: 'free2@private.test' });
      expect((await server.registry.accountClosure.close(user.id, PASSWORD)).ok).to.equal(true);
    });
  });

  describe('profile visibility "Organization"', () => {
    it('shows Organization fields to the organization\'s admins and to accounts it manages, not to others; relying parties get what the grant covers', async () => {
      const { admin } = await verifiedOrg('acme.test');
      const subject = await createAccount(server.registry, { email: 'sam@acme.test', name: 'Sam' });
      await server.registry.accounts.updateProfile(subject, { job_title: 'Engineer', department: 'R&D', visibility: { job_title: 'organization', department: 'private' } });
      const colleague = await createAccount(server.registry, { email: 'col@acme.test' });
      const stranger = await createAccount(server.registry, { email: 'stranger@private.test' });

      const profileAs = async (email: string) => {
        const { agent } = await signInToAccount(server.url, email);
        const res = await agent.get(`/api/profiles/${subject.id}`);
        expect(res.status).to.equal(200);
        return res.body as Record<string, string>;
      };
      expect(await profileAs(admin.email)).to.include({ name: 'Sam', job_title: 'Engineer' }).and.not.have.property('department');
      expect(await profileAs(colleague.email)).to.include({ job_title: 'Engineer' });
      expect(await profileAs(stranger.email)).to.include({ name: 'Sam' }).and.not.have.property('job_title');
      const anonymous = await (await import('supertest')).default(server.url).get(`/api/profiles/${subject.id}`);
      expect(anonymous.body).not.to.have.property('job_title');

      // A relying party is not a viewer: the ID token and userinfo carry what the grant covers
      // (decision 0010, revised), an Organization field included.
      const client = await createClient(server.registry, { firstParty: true });
      const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: client.redirectUri, scope: 'openid profile', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'st' });
      const callback = await new PageDriver(server.url).authorize(url.href, { email: 'sam@acme.test', password: PASSWORD });
      const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: 'st' });
      expect(tokens.claims()).to.include({ job_title: 'Engineer', department: 'R&D' });
      const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, subject.id);
      expect(userinfo).to.include({ job_title: 'Engineer', department: 'R&D' });
    });
  });

  describe('admin actions', () => {
    async function orgWithPeople() {
      const setup = await verifiedOrg('acme.test');
      const people = [];
      for (const [email, name] of [['alice@acme.test', 'Alice Archer'], ['bert@acme.test', 'Bert Baker'], ['=cmd@acme.test', '=HYPERLINK("http://x")'], ['dora@acme.test', 'Dora, "D" Dean']] as const) {
        people.push(await createAccount(server.registry, { email, name }));
      }
      return { ...setup, people };
    }

    it('lists, searches, filters and pages the managed accounts, and exports them as spreadsheet-safe CSV', async () => {
      const { admin, org, people } = await orgWithPeople();
      await createAccount(server.registry, { email: 'outsider@private.test' });
      const all = await managed.list(admin.id, org.id, { limit: 2 });
      if (!all.ok) throw new Error(all.problem);
      expect(all.accounts.map((a) => a.email)).to.deep.equal(['=cmd@acme.test', 'alice@acme.test']);
      const next = await managed.list(admin.id, org.id, { limit: 2, after: all.next });
      expect(next.ok && next.accounts.map((a) => a.email)).to.deep.equal(['bert@acme.test', 'dora@acme.test']);
      expect(next.ok && next.next).to.equal('dora@acme.test');
      const last = await managed.list(admin.id, org.id, { limit: 2, after: 'dora@acme.test' });
      expect(last.ok && [last.accounts.length, last.next]).to.deep.equal([0, undefined]);

      const byName = await managed.list(admin.id, org.id, { query: 'bert b' });
      expect(byName.ok && byName.accounts.map((a) => a.id)).to.deep.equal([people[1]!.id]);
      const byEmail = await managed.list(admin.id, org.id, { query: 'ALI' });
      expect(byEmail.ok && byEmail.accounts.map((a) => a.id)).to.deep.equal([people[0]!.id]);
      const wildcard = await managed.list(admin.id, org.id, { query: '%' });
      expect(wildcard.ok && wildcard.accounts).to.deep.equal([]);

      await managed.deactivate(admin.id, org.id, people[0]!.id);
      await managed.delete(admin.id, org.id, people[1]!.id);
      const filtered = async (status: string) => {
        const r = await managed.list(admin.id, org.id, { status });
        return r.ok ? r.accounts.map((a) => a.email) : r.problem;
      };
      expect(await filtered('deactivated')).to.deep.equal(['alice@acme.test']);
      expect(await filtered('pending_deletion')).to.deep.equal(['bert@acme.test']);
      expect(await filtered('active')).to.deep.equal(['=cmd@acme.test', 'dora@acme.test']);
      expect(await filtered('erased')).to.equal('list.invalid');
      expect(await managed.list(admin.id, org.id, { query: 'x'.repeat(1000) })).to.deep.equal({ ok: false, problem: 'list.invalid' });

      const exported = await managed.exportCsv(admin.id, org.id);
      if (!exported.ok) throw new Error(exported.problem);
      expect(exported.count).to.equal(4);
      const lines = exported.csv.trimEnd().split('\r\n');
      expect(lines[0]).to.equal('id,email,name,status,delete_after,created_at,managed_since');
      expect(lines[1]).to.match(new RegExp(`^${people[2]!.id},'=cmd@acme\\.test,"'=HYPERLINK\\(""http://x""\\)",active,,`));
      expect(lines[4]).to.contain(',"Dora, ""D"" Dean",active,');
      expect(exported.csv).not.to.contain('outsider');
    });

    it('finds accounts by id for the console: only those this organization manages, each once, at most 100 ids', async () => {
      const { admin, org, people } = await orgWithPeople();
      const other = await verifiedOrg('beta.test', 'Beta');
      const betaUser = await createAccount(server.registry, { email: 'bo@beta.test' });
      const unmanaged = await createAccount(server.registry, { email: 'solo@private.test' });
      const [alice, bert] = [people[0]!, people[1]!];
      const found = await managed.find(admin.id, org.id, [bert.id, alice.id, alice.id, betaUser.id, unmanaged.id, 'acc_nope', 42, '']);
      if (!found.ok) throw new Error(found.problem);
      expect(found.accounts.map((a) => a.email)).to.deep.equal(['alice@acme.test', 'bert@acme.test']);
      expect(found.accounts[0]).to.deep.include({ id: alice.id, name: 'Alice Archer', status: 'active', deleteAfter: null });
      expect(found.accounts[0]!.managedSince).to.be.instanceOf(Date);
      await managed.delete(admin.id, org.id, bert.id);
      const pending = await managed.find(admin.id, org.id, [bert.id]);
      expect(pending.ok && pending.accounts[0]!.status).to.equal('pending_deletion');
      expect(await managed.find(admin.id, org.id, [])).to.deep.equal({ ok: true, accounts: [] });
      expect(await managed.find(admin.id, org.id, Array.from({ length: 101 }, (_, i) => `acc_${i}`))).to.deep.equal({ ok: false, problem: 'list.invalid' });
      expect(await managed.find(admin.id, org.id, alice.id)).to.deep.equal({ ok: false, problem: 'list.invalid' });
      expect(await managed.find(other.admin.id, org.id, [alice.id])).to.deep.equal({ ok: false, problem: 'organization.not_found' });
      expect(await managed.find(other.admin.id, other.org.id, [alice.id])).to.deep.equal({ ok: true, accounts: [] });
    });

    it('edits the name and moves the address to another verified domain of the organization only, telling both addresses', async () => {
      const { admin, org, people } = await orgWithPeople();
      const alice = people[0]!;
      const foreign = await verifiedOrg('other.test', 'Other');
      await addVerifiedDomain(admin.id, org.id, 'acme-labs.test');
      const pending = await service.addDomain(admin.id, org.id, 'acme-pending.test');
      if (!pending.ok) throw new Error(pending.problem);

      expect(await managed.update(admin.id, org.id, alice.id, { email: 'alice@private.test' })).to.deep.equal({ ok: false, problem: 'email.domain_not_verified' });
      expect(await managed.update(admin.id, org.id, alice.id, { email: 'alice@other.test' })).to.deep.equal({ ok: false, problem: 'email.domain_not_verified' });
      expect(await managed.update(admin.id, org.id, alice.id, { email: 'alice@acme-pending.test' })).to.deep.equal({ ok: false, problem: 'email.domain_not_verified' });
      expect(await managed.update(admin.id, org.id, alice.id, { email: 'bert@acme.test' })).to.deep.equal({ ok: false, problem: 'signup.email_taken' });
      expect(await managed.update(admin.id, org.id, alice.id, { email: 'not an address' })).to.deep.equal({ ok: false, problem: 'login.invalid_email' });
      expect(await managed.update(admin.id, org.id, alice.id, { name: 'x'.repeat(201) })).to.deep.equal({ ok: false, problem: 'account.name_invalid' });
      expect(foreign.org.id).not.to.equal(org.id);

      const updated = await managed.update(admin.id, org.id, alice.id, { name: '  Alice  Cooper ', email: 'Alice@Acme-Labs.test' });
      if (!updated.ok) throw new Error(updated.problem);
      expect([updated.account.email, updated.account.name]).to.deep.equal(['alice@acme-labs.test', 'Alice Cooper']);
      await server.registry.mail.delivery.deliverDue();
      for (const to of ['alice@acme.test', 'alice@acme-labs.test']) {
        const mail = await smtp.lastTo(to, 'Your organization changed your Lanyard email address');
        expect(mail.text).to.contain('from alice@acme.test to alice@acme-labs.test');
      }
      expect(await managersOf(alice.id)).to.deep.equal([{ kind: 'organization', id: org.id, name: 'Acme' }]);
      const { rows } = await server.registry.db.query<{ detail: Record<string, unknown> }>(`SELECT detail FROM security_events WHERE type = 'organization.account_updated' AND account_id = $1`, [alice.id]);
      expect(rows[0]!.detail).to.deep.include({ actorId: admin.id, organizationId: org.id, email: { from: 'alice@acme.test', to: 'alice@acme-labs.test' }, name: true });
      const login = await signInToAccount(server.url, 'alice@acme-labs.test');
      expect(login.status).to.equal(200);
    });

    it('deactivates at once: login refused, refresh token invalid_grant, back-channel logout sent to each relying party; reactivation restores login', async () => {
      const { admin, org, people } = await orgWithPeople();
      const dora = people[3]!;
      const jira = await createClient(server.registry, { firstParty: true, name: 'Jira', backchannelLogoutUri: `${receiver.url}/jira/logout` });
      const config = await oidc.discovery(new URL(server.url), jira.clientId, jira.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: jira.redirectUri, scope: 'openid email offline_access', prompt: 'consent', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'st' });
      const callback = await new PageDriver(server.url).authorize(url.href, { email: dora.email, password: PASSWORD });
      const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: 'st' });
      expect(tokens.refresh_token).to.be.a('string');

      const done = await managed.deactivate(admin.id, org.id, dora.id, { ip: '127.0.0.1' });
      expect(done.ok && done.account.status).to.equal('deactivated');

      expect(receiver.deliveries.map((d) => d.path)).to.deep.equal(['/jira/logout']);
      const { payload } = await jose.jwtVerify(receiver.deliveries[0]!.logoutToken, jose.createRemoteJWKSet(new URL(`${server.url}/jwks`)), { issuer: server.url, audience: jira.clientId, typ: 'logout+jwt' });
      expect(payload.sub).to.equal(dora.id);
      expect(payload.sid).to.equal(tokens.claims()!.sid);
      const refresh = await oidc.refreshTokenGrant(config, tokens.refresh_token!).catch((err: unknown) => err);
      expect((refresh as oidc.ResponseBodyError).error).to.equal('invalid_grant');
      const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, dora.id).catch((err: unknown) => err);
      expect(userinfo).to.be.instanceOf(Error);
      expect((await signInToAccount(server.url, dora.email)).status, 'login refused').not.to.equal(200);
      expect(await managed.deactivate(admin.id, org.id, dora.id)).to.deep.equal({ ok: false, problem: 'account.state' });

      const back = await managed.reactivate(admin.id, org.id, dora.id);
      expect(back.ok && back.account.status).to.equal('active');
      expect((await signInToAccount(server.url, dora.email)).status).to.equal(200);
      const types = (await server.registry.db.query<{ type: string }>(`SELECT type FROM security_events WHERE account_id = $1 AND type LIKE 'organization.%' ORDER BY id`, [dora.id])).rows.map((r) => r.type);
      expect(types, 'the owner\'s own trail').to.deep.equal(['organization.account_deactivated', 'organization.account_reactivated']);
      const audit = (await server.registry.db.query<{ action: string; actor_id: string; target_id: string; ip: string }>(`SELECT action, actor_id, target_id, ip FROM organization_events WHERE organization_id = $1 AND target_type = 'account' ORDER BY id`, [org.id])).rows;
      expect(audit.map((r) => [r.action, r.actor_id, r.target_id])).to.deep.equal([['account.deactivated', admin.id, dora.id], ['account.reactivated', admin.id, dora.id]]);
      expect(audit[0]!.ip).to.equal('127.0.0.1');
    });

    it('deletes after a 14-day grace period the admin can cancel (the clock is injected)', async () => {
      const { admin, org, people } = await orgWithPeople();
      const [alice, bert] = [people[0]!, people[1]!];
      const deleted = await managed.delete(admin.id, org.id, alice.id);
      if (!deleted.ok) throw new Error(deleted.problem);
      expect(deleted.deleteAfter.getTime() - clock.now()).to.be.closeTo(14 * 86_400_000, 1000);
      expect((await signInToAccount(server.url, alice.email)).status, 'deactivated at once').not.to.equal(200);
      await managed.delete(admin.id, org.id, bert.id);
      expect(await managed.cancelDeletion(admin.id, org.id, bert.id)).to.deep.include({ ok: true });
      expect(await managed.cancelDeletion(admin.id, org.id, bert.id)).to.deep.equal({ ok: false, problem: 'account.state' });

      offset = 13 * 86_400_000;
      await server.registry.accountClosure.sweep();
      expect((await server.registry.accounts.findById(alice.id))!.erased_at).to.equal(null);
      offset = 14 * 86_400_000 + 60_000;
      await server.registry.accountClosure.sweep();
      const erased = (await server.registry.accounts.findById(alice.id))!;
      expect([erased.email, erased.name, erased.erased_at !== null]).to.deep.equal([`erased:${alice.id}`, null, true]);
      const kept = (await server.registry.accounts.findById(bert.id))!;
      expect([kept.email, kept.status, kept.erased_at]).to.deep.equal(['bert@acme.test', 'deactivated', null]);
      const listed = await managed.list(admin.id, org.id);
      expect(listed.ok && listed.accounts.map((a) => a.email)).not.to.include(`erased:${alice.id}`);
      // Erased, the account is nobody's to manage: the dashboard counts what the list shows.
      expect(await managersOf(alice.id)).to.deep.equal([]);
      const dashboard = await service.dashboard(admin.id, org.id);
      expect(dashboard.ok && listed.ok && dashboard.managedAccounts).to.equal(listed.ok ? listed.accounts.length : -1);
      expect(await managed.reactivate(admin.id, org.id, alice.id), 'an erased account is gone').to.deep.equal({ ok: false, problem: 'account.not_found' });
      expect((await managed.reactivate(admin.id, org.id, bert.id)).ok).to.equal(true);
    });

    it('lets only that organization\'s admins act, and only on accounts it manages', async () => {
      const { admin, org, people } = await orgWithPeople();
      const other = await verifiedOrg('beta.test', 'Beta');
      const betaUser = await createAccount(server.registry, { email: 'bo@beta.test' });
      const unmanaged = await createAccount(server.registry, { email: 'solo@private.test' });
      const member = await createAccount(server.registry, { email: 'member@admins.example' });
      const db = await testDatabase();
      await db.query(`INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'member', now())`, [org.id, member.id]);
      const alice = people[0]!;

      const actions = (actor: string, orgId: string, target: string) => [
        managed.deactivate(actor, orgId, target), managed.reactivate(actor, orgId, target), managed.delete(actor, orgId, target),
        managed.cancelDeletion(actor, orgId, target), managed.update(actor, orgId, target, { name: 'Mallory' }),
      ];
      // The admin of Beta on Acme's account, through Acme or through Beta.
      for (const r of await Promise.all(actions(other.admin.id, org.id, alice.id))) expect(r).to.deep.equal({ ok: false, problem: 'organization.not_found' });
      for (const r of await Promise.all(actions(other.admin.id, other.org.id, alice.id))) expect(r).to.deep.equal({ ok: false, problem: 'account.not_found' });
      // Acme's admin on Beta's account, and on nobody's.
      for (const target of [betaUser.id, unmanaged.id, 'acc_nope', 42 as unknown as string]) {
        for (const r of await Promise.all(actions(admin.id, org.id, target))) expect(r).to.deep.equal({ ok: false, problem: 'account.not_found' });
      }
      // A member is not an admin.
      for (const r of await Promise.all(actions(member.id, org.id, alice.id))) expect(r).to.deep.equal({ ok: false, problem: 'organization.forbidden' });
      expect(await managed.list(member.id, org.id)).to.deep.equal({ ok: false, problem: 'organization.forbidden' });
      expect(await managed.exportCsv(other.admin.id, org.id)).to.deep.equal({ ok: false, problem: 'organization.not_found' });
      expect(await managed.previewClaim(other.admin.id, org.id, other.domainId)).to.deep.equal({ ok: false, problem: 'organization.not_found' });
      expect(await managed.claim(admin.id, org.id, other.domainId), 'another organization\'s domain').to.deep.equal({ ok: false, problem: 'domain.not_found' });
      // Nothing happened to anyone.
      for (const id of [alice.id, betaUser.id, unmanaged.id]) expect((await server.registry.accounts.findById(id))!.status).to.equal('active');
      expect((await server.registry.accounts.findById(alice.id))!.name).to.equal('Alice Archer');
    });

    it('keeps admins from locking out or taking over each other: an admin’s account is not deactivated, deleted or moved; removing an admin keeps one active', async () => {
      const { admin, org, people } = await orgWithPeople();
      const colleague = people[0]!; // alice@acme.test: managed by the organization, and made an admin
      const db = await testDatabase();
      await db.query(`INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'admin', now())`, [org.id, colleague.id]);
      // Also an admin managed by the organization: the first admin moved to its domain.
      await db.query('UPDATE accounts SET email = $2 WHERE id = $1', [admin.id, 'admin@acme.test']);
      await db.query(`INSERT INTO account_managers (account_id, kind, organization_id, since) VALUES ($1, 'organization', $2, now()) ON CONFLICT DO NOTHING`, [admin.id, org.id]);

      const refused = { ok: false, problem: 'account.admin' };
      expect(await managed.deactivate(admin.id, org.id, colleague.id)).to.deep.equal(refused);
      expect(await managed.delete(admin.id, org.id, colleague.id)).to.deep.equal(refused);
      expect(await managed.update(admin.id, org.id, colleague.id, { email: 'bert.new@acme.test' })).to.deep.equal(refused);
      expect((await managed.update(admin.id, org.id, colleague.id, { name: 'Alice A. Archer' })).ok, 'a name is not power').to.equal(true);
      // The console's form sends the address with the name: the same address is no move.
      expect((await managed.update(admin.id, org.id, colleague.id, { name: 'Alice Archer', email: 'Alice@acme.test' })).ok, 'renamed through the form').to.equal(true);
      // Both at once, each on the other: neither goes through.
      const both = await Promise.all([managed.deactivate(admin.id, org.id, colleague.id), managed.deactivate(colleague.id, org.id, admin.id)]);
      expect(both).to.deep.equal([refused, refused]);
      for (const id of [admin.id, colleague.id]) expect((await server.registry.accounts.findById(id))!.status).to.equal('active');

      // Removed as an admin first, the account is an ordinary managed one.
      expect((await service.removeAdmin(admin.id, org.id, colleague.id)).ok).to.equal(true);
      expect((await managed.deactivate(admin.id, org.id, colleague.id)).ok).to.equal(true);

      // A deactivated admin acts for nobody: the last active admin cannot be removed.
      await db.query(`INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'admin', now())`, [org.id, colleague.id]);
      expect(await service.removeAdmin(admin.id, org.id, admin.id)).to.deep.equal({ ok: false, problem: 'admin.last' });
      expect((await service.removeAdmin(admin.id, org.id, colleague.id)).ok, 'the deactivated one may go').to.equal(true);
    });
  });
});
