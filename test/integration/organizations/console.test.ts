import { expect } from 'chai';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount } from '../../helpers/factories.ts';
import { startDns, type TestDns } from '../../helpers/dns-server.ts';
import { startWebFiles, type TestWebFiles } from '../../helpers/web-files.ts';
import { startSmtp, linkIn, type TestSmtp } from '../../helpers/smtp.ts';
import { signInToAccount, type Agent, postForm as post } from '../../helpers/account-pages.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import type { Clock } from '../../../src/shared/clock.ts';
import { csvCell } from '../../../src/shared/csv.ts';

/**
 * The admin console through its pages, as a browser without JavaScript would use it: a real
 * DNS server on loopback answers the verification, a real SMTP server receives invitations.
 */
describe('organizations: admin console', () => {
  let dns: TestDns;
  let web: TestWebFiles;
  let smtp: TestSmtp;
  let server: TestServer;
  let now = Date.UTC(2026, 10, 1, 12);
  const clock: Clock = { now: () => now };
  const INVITATION_TTL = 3 * 86_400;

  before(async () => {
    dns = await startDns();
    web = await startWebFiles();
  });
  after(async () => {
    await dns.close();
    await web.close();
  });
  beforeEach(async () => {
    await resetDatabase();
    dns.txt.clear();
    dns.a.clear();
    now = Date.UTC(2026, 10, 1, 12);
    smtp = await startSmtp();
    server = await startTestServer({
      clock,
      overrides: {
        smtpUrl: smtp.url,
        dnsServers: [dns.server],
        organizationInvitationTtl: INVITATION_TTL,
        domainVerification: { httpScheme: 'http', httpPort: web.port, timeoutSeconds: 2, recheckIntervalSeconds: 0 },
      },
    });
  });
  afterEach(async () => {
    await server.close();
    await smtp.close();
  });

  const deliver = async () => {
    await server.registry.background.idle();
    await server.registry.mail.delivery.deliverDue();
  };

  async function signIn(email?: string): Promise<{ agent: Agent; email: string; id: string }> {
    const account = await createAccount(server.registry, email ? { email } : {});
    const { agent, status } = await signInToAccount(server.url, account.email);
    expect(status).to.equal(200);
    return { agent, email: account.email, id: account.id };
  }

  async function createOrg(agent: Agent, name = 'Acme'): Promise<string> {
    const res = await post(agent, '/admin', '/admin/organizations', { name });
    expect(res.status).to.equal(303);
    const path = res.headers.location!;
    expect(path).to.match(/^\/admin\/organizations\/org_/);
    return path;
  }

  async function addDomain(agent: Agent, org: string, domain: string) {
    const res = await post(agent, `${org}/domains`, `${org}/domains`, { domain });
    expect(res.status).to.equal(303);
    const id = /#(dom_[^&]+)$/.exec(res.headers.location!)?.[1];
    expect(id).to.be.a('string');
    const page = await agent.get(`${org}/domains`);
    const token = new RegExp(`id="txt-value-${id}" type="text" readonly value="([^"]+)"`).exec(page.text)?.[1];
    expect(token).to.match(/^lanyard-domain-verification=[A-Za-z0-9_-]{27}$/);
    return { id: id!, txtValue: token!, page };
  }

  /** An admin and their organization Acme, holding acme.test (verified through the DNS server). */
  async function acmeWithVerifiedDomain() {
    const admin = await signIn();
    const org = await createOrg(admin.agent, 'Acme');
    const { id, txtValue } = await addDomain(admin.agent, org, 'acme.test');
    dns.txt.set('acme.test', [[txtValue]]);
    expect((await post(admin.agent, `${org}/domains`, `${org}/domains/${id}/verify`)).status).to.equal(303);
    return { admin, org, orgId: org.split('/').pop()!, id };
  }

  it('signs in through the settings gate: without a session /admin sends the browser to sign in', async () => {
    const res = await (await import('supertest')).default(server.url).get('/admin');
    expect(res.status).to.equal(303);
    expect(res.headers.location).to.equal('/account/login?next=%2Fadmin');
  });

  it('creates an organization (creator becomes admin) and shows it on the list and the dashboard', async () => {
    const { agent } = await signIn();
    const empty = await agent.get('/admin');
    expect(empty.text).to.contain('You don’t run an organization yet');
    const bad = await post(agent, '/admin', '/admin/organizations', { name: '   ' });
    expect(bad.status).to.equal(400);
    expect(bad.text).to.contain('Check the name');
    const org = await createOrg(agent, 'Acme Corp');
    const dash = await agent.get(org);
    expect(dash.status).to.equal(200);
    expect(dash.text).to.contain('Organization created');
    expect(dash.text).to.match(/id="managed-count">0</);
    expect(dash.text).to.match(/id="pending-invitations">0</);
    expect(dash.text).to.contain('created the organization Acme Corp');
    const list = await agent.get('/admin');
    expect(list.text).to.contain('Acme Corp').and.to.contain('Admin');
  });

  it('adds a domain, shows its token, verifies it against the real DNS server, with a clear per-method failure first', async () => {
    const { agent } = await signIn();
    const org = await createOrg(agent);
    const refused = await post(agent, `${org}/domains`, `${org}/domains`, { domain: 'gmail.com' });
    expect(refused.status).to.equal(400);
    expect(refused.text).to.contain('public email provider');
    // The message sits by the form and is tied to its field.
    expect(refused.text).to.match(/<h2 class="section">Add a domain<\/h2>\s*<div class="alert"/).and.to.match(/id="domain"[^>]*aria-invalid="true" aria-describedby="form-error"/);
    const malformed = await post(agent, `${org}/domains`, `${org}/domains`, { domain: 'https://acme.test/x' });
    expect(malformed.text).to.contain('That isn’t a domain name');

    const { id, txtValue, page } = await addDomain(agent, org, 'Acme.TEST');
    expect(page.text).to.contain('acme.test').and.to.contain('pending');
    expect(page.text).to.contain(`http://acme.test:${web.port}/.well-known/lanyard-domain-verification.txt`);

    const failed = await post(agent, `${org}/domains`, `${org}/domains/${id}/verify`);
    expect(failed.status).to.equal(200);
    expect(failed.text).to.contain('We couldn’t find your token yet');
    expect(failed.text).to.match(/DNS TXT record:<\/strong> no TXT record lanyard-domain-verification=… on acme\.test/);
    expect(failed.text).to.contain('HTTPS file:</strong>');

    dns.txt.set('acme.test', [[txtValue]]);
    const ok = await post(agent, `${org}/domains`, `${org}/domains/${id}/verify`);
    expect(ok.status).to.equal(303);
    const after = await agent.get(`${org}/domains`);
    expect(after.text).to.contain('Verified. Your organization now holds this domain.');
    expect(after.text).to.contain('state-verified').and.to.contain('by DNS record');
    expect(dns.queries.some((q) => q.name === 'acme.test')).to.equal(true);
  });

  it('shows an internationalised domain as people write it beside its ASCII form', async () => {
    const admin = await signIn();
    const org = await createOrg(admin.agent, 'Verlag');
    const { page } = await addDomain(admin.agent, org, 'Bücher.test');
    expect(page.text).to.contain('<strong>xn--bcher-kva.test</strong> (bücher.test)');
  });

  it('removes a domain only after a confirmation page that says what happens', async () => {
    const { agent } = await signIn();
    const org = await createOrg(agent);
    const { id } = await addDomain(agent, org, 'acme.test');
    const confirm = await agent.get(`${org}/domains/${id}/remove`);
    expect(confirm.status).to.equal(200);
    expect(confirm.text).to.contain('Remove acme.test?').and.to.contain('adding the domain again gives a new token');
    const res = await agent.post(`${org}/domains/${id}/remove`).type('form').send({ _csrf: csrfFrom(confirm.text) });
    expect(res.status).to.equal(303);
    const page = await agent.get(`${org}/domains`);
    expect(page.text).to.contain('acme.test was removed');
    expect(page.text).not.to.contain('id="domains"');
  });

  it('renames an organization from its settings, audited with the old name; only its admins may', async () => {
    const admin = await signIn();
    const org = await createOrg(admin.agent, 'Acme');
    const settings = await admin.agent.get(`${org}/settings`);
    expect(settings.status).to.equal(200);
    expect(settings.text).to.contain('value="Acme"').and.to.contain(`action="${org}/name"`);
    const bad = await post(admin.agent, `${org}/settings`, `${org}/name`, { name: '\u200b\u200b' });
    expect(bad.status).to.equal(400);
    expect(bad.text).to.contain('Check the name').and.to.contain('aria-invalid="true"');
    expect((await server.registry.organizations.service.listFor(admin.id))[0]!.name).to.equal('Acme');

    const renamed = await post(admin.agent, `${org}/settings`, `${org}/name`, { name: '  Acme Europe ' });
    expect(renamed.status).to.equal(303);
    expect(renamed.headers.location).to.equal(`${org}/settings`);
    const after = await admin.agent.get(`${org}/settings`);
    expect(after.text).to.contain('The organization is now called Acme Europe.');
    expect((await admin.agent.get('/admin')).text).to.contain('Acme Europe');
    expect((await admin.agent.get(`${org}/audit`)).text).to.contain('renamed the organization from Acme to</td><td>Acme Europe</td>');
    expect((await admin.agent.get(org)).text).to.contain('renamed the organization from Acme to Acme Europe');

    // The same name again changes nothing and records nothing.
    const same = await post(admin.agent, `${org}/settings`, `${org}/name`, { name: 'Acme Europe' });
    expect(same.status).to.equal(303);
    expect((await admin.agent.get(`${org}/settings`)).text).not.to.contain('is now called');
    const renames = await server.registry.db.query(`SELECT 1 FROM organization_events WHERE action = 'organization.renamed'`);
    expect(renames.rows).to.have.length(1);

    const stranger = await signIn();
    const refused = await post(stranger.agent, '/admin', `${org}/name`, { name: 'Mine now' });
    expect(refused.status).to.equal(404);
    expect((await stranger.agent.get(`${org}/settings`)).status).to.equal(404);
    expect((await server.registry.organizations.service.listFor(admin.id))[0]!.name).to.equal('Acme Europe');
  });

  it('deletes an organization once its name is typed again: its domain is free again, its admins see it in their activity', async () => {
    const { admin, org, orgId, id } = await acmeWithVerifiedDomain();

    const settings = await admin.agent.get(`${org}/settings`);
    expect(settings.text).to.contain('Its domains are removed: another organization could verify them.').and.to.contain('Type <strong>Acme</strong> to confirm');
    const wrong = await admin.agent.post(`${org}/delete`).type('form').send({ _csrf: csrfFrom(settings.text), confirm: 'acme' });
    expect(wrong.status).to.equal(400);
    expect(wrong.text).to.contain('Type the name to confirm');
    expect((await admin.agent.get(org)).status, 'nothing was deleted').to.equal(200);

    const deleted = await admin.agent.post(`${org}/delete`).type('form').send({ _csrf: csrfFrom(settings.text), confirm: ' Acme ' });
    expect(deleted.status).to.equal(303);
    expect(deleted.headers.location).to.equal('/admin');
    const home = await admin.agent.get('/admin');
    expect(home.text).to.contain('Acme was deleted.').and.to.contain('You don’t run an organization yet');
    expect((await admin.agent.get(org)).status).to.equal(404);
    for (const table of ['organization_domains', 'organization_members', 'organization_invitations']) {
      const left = await server.registry.db.query(`SELECT 1 FROM ${table} WHERE organization_id = $1`, [orgId]);
      expect(left.rows, table).to.have.length(0);
    }
    // The audit trail stays (append-only), the deletion its last record, on the row kept for it.
    const trail = await server.registry.db.query<{ action: string }>('SELECT action FROM organization_events WHERE organization_id = $1 ORDER BY id DESC', [orgId]);
    expect(trail.rows[0]!.action).to.equal('organization.deleted');
    expect(trail.rows.map((r) => r.action)).to.include('domain.verified');
    const tombstone = await server.registry.db.query<{ deleted_at: Date | null }>('SELECT deleted_at FROM organizations WHERE id = $1', [orgId]);
    expect(tombstone.rows[0]!.deleted_at).to.be.an.instanceOf(Date);
    // Nothing attaches to it again, whatever writes it.
    let refused: unknown;
    try {
      await server.registry.db.query(`INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'admin', now())`, [orgId, admin.id]);
    } catch (err) {
      refused = err;
    }
    expect((refused as { code?: string } | undefined)?.code).to.equal('LY404');
    // …not even an audit record: the deletion stays the trail's last.
    const late = await server.registry.db.query(`INSERT INTO organization_events (organization_id, occurred_at, action, actor_id) VALUES ($1, now(), 'domain.verified', $2)`, [orgId, admin.id]).catch((err: unknown) => err);
    expect((late as { code?: string }).code).to.equal('LY404');
    const activity = await admin.agent.get('/account/security');
    expect(activity.text).to.contain('The organization Acme, which you were an admin of, was deleted');
    expect(activity.text, 'the device is named').not.to.match(/was deleted[^<]*Unknown device/);

    // The domain is free: another organization verifies it.
    const other = await signIn();
    const otherOrg = await createOrg(other.agent, 'Acme Again');
    const again = await addDomain(other.agent, otherOrg, 'acme.test');
    dns.txt.set('acme.test', [[again.txtValue]]);
    expect((await post(other.agent, `${otherOrg}/domains`, `${otherOrg}/domains/${again.id}/verify`)).status).to.equal(303);
  });

  /** Accounts at acme.test, claimed by the organization. */
  async function managedWorkers(admin: { id: string }, orgId: string, domainId: string, emails: string[]) {
    const workers = [];
    for (const email of emails) workers.push(await createAccount(server.registry, { email }));
    await server.registry.organizations.managedAccounts.claim(admin.id, orgId, domainId);
    const managed = await server.registry.db.query('SELECT 1 FROM account_managers WHERE organization_id = $1', [orgId]);
    expect(managed.rows, 'the accounts on the domain are managed').to.have.length(emails.length);
    return workers;
  }
  const managedBy = async (orgId: string) => (await server.registry.db.query('SELECT account_id FROM account_managers WHERE organization_id = $1', [orgId])).rows;

  it('removes a domain that manages accounts only when the admin releases them, and tells each owner (decision 0078)', async () => {
    const { admin, org, orgId, id } = await acmeWithVerifiedDomain();
    const [worker] = await managedWorkers(admin, orgId, id, ['worker@acme.test']);
    const confirm = await admin.agent.get(`${org}/domains/${id}/remove`);
    expect(confirm.text).to.contain('id="release-effects"').and.to.contain('Release 1 account and remove acme.test').and.to.contain('name="release" value="yes"');
    // Without the release, the domain stays and so does the account's manager.
    const refused = await admin.agent.post(`${org}/domains/${id}/remove`).type('form').send({ _csrf: csrfFrom(confirm.text) });
    expect(refused.status).to.equal(409);
    expect(refused.text).to.contain('This domain manages accounts');
    expect(await managedBy(orgId)).to.have.length(1);

    const removed = await admin.agent.post(`${org}/domains/${id}/remove`).type('form').send({ _csrf: csrfFrom(confirm.text), release: 'yes' });
    expect(removed.status).to.equal(303);
    expect((await admin.agent.get(`${org}/domains`)).text).to.contain('acme.test was removed. 1 account was released; each owner was told by email.');
    expect(await managedBy(orgId)).to.have.length(0);
    await deliver();
    const mail = await smtp.lastTo('worker@acme.test', 'Your organization no longer manages your Lanyard account');
    expect(mail.text).to.contain('Acme has removed acme.test').and.to.contain('/password/forgot');
    const events = await server.registry.events.page(worker!.id, { limit: 5 });
    expect(events.events.map((e) => e.type)).to.include('organization.account_released');
    expect((await admin.agent.get(`${org}/audit`)).text).to.contain('released the managed accounts of');
  });

  it('deletes an organization that manages accounts only when none is deactivated, releasing them all', async () => {
    const { admin, org, orgId, id } = await acmeWithVerifiedDomain();
    const [ada, bob] = await managedWorkers(admin, orgId, id, ['ada@acme.test', 'bob@acme.test']);
    expect((await server.registry.organizations.managedAccounts.deactivate(admin.id, orgId, bob!.id)).ok).to.equal(true);

    const blocked = await admin.agent.get(`${org}/settings`);
    expect(blocked.text).to.contain('id="delete-blocked"').and.to.contain('1 of them deactivated').and.not.to.contain(`action="${org}/delete"`);
    // The form is not there, and the server refuses the request anyway.
    const forced = await admin.agent.post(`${org}/delete`).type('form').send({ _csrf: csrfFrom(blocked.text), confirm: 'Acme', release: 'yes' });
    expect(forced.status).to.equal(409);
    expect(forced.text).to.contain('Some of these accounts are deactivated');
    expect((await admin.agent.get(org)).status).to.equal(200);
    expect(await managedBy(orgId)).to.have.length(2);

    expect((await server.registry.organizations.managedAccounts.reactivate(admin.id, orgId, bob!.id)).ok).to.equal(true);
    const settings = await admin.agent.get(`${org}/settings`);
    expect(settings.text).to.contain('id="release-effects"').and.to.contain('The 2 accounts it manages are released');
    const withoutRelease = await admin.agent.post(`${org}/delete`).type('form').send({ _csrf: csrfFrom(settings.text), confirm: 'Acme' });
    expect(withoutRelease.status).to.equal(409);
    expect(withoutRelease.text).to.contain('This organization manages accounts');
    const deleted = await admin.agent.post(`${org}/delete`).type('form').send({ _csrf: csrfFrom(settings.text), confirm: 'Acme', release: 'yes' });
    expect(deleted.status).to.equal(303);
    expect((await admin.agent.get('/admin')).text).to.contain('Acme was deleted. 2 accounts were released; each owner was told by email.');
    expect(await managedBy(orgId)).to.have.length(0);
    await deliver();
    expect((await smtp.lastTo('ada@acme.test', 'Your organization no longer manages your Lanyard account')).text).to.contain('Acme has closed its organization');
    expect((await server.registry.accounts.findById(ada!.id))?.status).to.equal('active');
  });

  it('answers 404 to anyone but the organization’s admins, for pages and actions alike', async () => {
    const a = await signIn();
    const b = await signIn();
    const orgA = await createOrg(a.agent, 'Org A');
    const orgB = await createOrg(b.agent, 'Org B');
    const { id: domainB } = await addDomain(b.agent, orgB, 'b.test');
    const missing = await a.agent.get('/admin/organizations/org_doesnotexist');
    expect(missing.status).to.equal(404);
    for (const path of ['', '/domains', '/admins', '/audit', '/audit.csv', `/domains/${domainB}/remove`, '/leave']) {
      const res = await a.agent.get(`${orgB}${path}`);
      expect(res.status, path).to.equal(404);
      expect(res.text).to.equal(missing.text.replace(/Reference: <code>[^<]*<\/code>/, res.text.match(/Reference: <code>[^<]*<\/code>/)?.[0] ?? ''));
    }
    // Actions with A's own CSRF token, aimed at B.
    const form = await a.agent.get(`${orgA}/domains`);
    const csrf = csrfFrom(form.text);
    for (const [path, fields] of [[`${orgB}/domains`, { domain: 'evil.test' }], [`${orgB}/domains/${domainB}/verify`, {}], [`${orgB}/domains/${domainB}/remove`, {}], [`${orgB}/invitations`, { email: 'x@evil.test' }], [`${orgB}/admins/${b.id}/remove`, {}], [`${orgB}/leave`, {}]] as const) {
      const res = await a.agent.post(path).type('form').send({ _csrf: csrf, ...fields });
      expect(res.status, path).to.equal(404);
    }
    // A domain of B through A's organization is not found either.
    expect((await a.agent.post(`${orgA}/domains/${domainB}/verify`).type('form').send({ _csrf: csrf })).status).to.equal(404);
    const bDomains = await b.agent.get(`${orgB}/domains`);
    expect(bDomains.text).to.contain('b.test');
    expect(bDomains.text).not.to.contain('evil.test');
    // A member (not an admin) gets the same 404.
    const member = await signIn();
    const orgBId = orgB.split('/').pop()!;
    await server.registry.db.query(`INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'member', now())`, [orgBId, member.id]);
    expect((await member.agent.get(orgB)).status).to.equal(404);
    expect((await member.agent.get(`${orgB}/audit`)).status).to.equal(404);
  });

  it('refuses a form without its CSRF token', async () => {
    const { agent } = await signIn();
    const org = await createOrg(agent);
    const res = await agent.post(`${org}/domains`).type('form').send({ domain: 'acme.test' });
    expect(res.status).to.equal(403);
    const wrong = await agent.post('/admin/organizations').type('form').send({ _csrf: 'forged', name: 'X' });
    expect(wrong.status).to.equal(403);
    expect((await server.registry.organizations.service.listDomains((await server.registry.db.query<{ created_by: string }>('SELECT created_by FROM organizations')).rows[0]!.created_by, org.split('/').pop()!) as { domains: unknown[] }).domains).to.have.length(0);
  });

  describe('invitations', () => {
    async function invite(agent: Agent, org: string, email: string) {
      const res = await post(agent, `${org}/admins`, `${org}/invitations`, { email });
      expect(res.status).to.equal(303);
      await deliver();
      const mail = await smtp.lastTo(email.toLowerCase());
      expect(mail.subject).to.equal('You’re invited to be an admin of an organization on Lanyard');
      return linkIn(mail, `${server.url}/admin/invitation?token=`);
    }

    it('invites by email, and the invited account accepts after signing in', async () => {
      const admin = await signIn();
      const org = await createOrg(admin.agent, 'Acme');
      const invitee = await signIn('new.admin@acme.test');
      const link = await invite(admin.agent, org, 'New.Admin@acme.test');
      const admins = await admin.agent.get(`${org}/admins`);
      expect(admins.text).to.contain('Invitation sent to new.admin@acme.test');
      expect(admins.text).to.match(/id="invitations"[\s\S]*new\.admin@acme\.test/);
      expect((await admin.agent.get(org)).text).to.match(/id="pending-invitations">1</);
      // Only a keyed hash of the token is stored.
      const token = new URL(link).searchParams.get('token')!;
      const stored = await server.registry.db.query<{ token_hash: string }>('SELECT token_hash FROM organization_invitations');
      expect(stored.rows[0]!.token_hash).not.to.contain(token);

      const opened = await invitee.agent.get(link.replace(server.url, ''));
      expect(opened.status).to.equal(303);
      expect(opened.headers.location).to.equal('/admin/invitation');
      const page = await invitee.agent.get('/admin/invitation');
      expect(page.text).to.contain('Join Acme').and.to.contain('Accept and become an admin');
      const accepted = await invitee.agent.post('/admin/invitation/accept').type('form').send({ _csrf: csrfFrom(page.text) });
      expect(accepted.status).to.equal(303);
      expect(accepted.headers.location).to.equal(org);
      const dash = await invitee.agent.get(org);
      expect(dash.status).to.equal(200);
      expect(dash.text).to.contain('You are now an admin of Acme');
      // One use: the same link again.
      const again = await invitee.agent.get(link.replace(server.url, ''));
      expect(again.status).to.equal(410);
      expect(again.text).to.contain('already used');
    });

    it('sends the invitation to an address without an account, and the page asks to sign in', async () => {
      const admin = await signIn();
      const org = await createOrg(admin.agent);
      const link = await invite(admin.agent, org, 'nobody@elsewhere.test');
      const anonymous = (await import('supertest')).default.agent(server.url);
      const opened = await anonymous.get(link.replace(server.url, ''));
      expect(opened.status).to.equal(303);
      const page = await anonymous.get('/admin/invitation');
      expect(page.status).to.equal(200);
      expect(page.text).to.contain('Sign in with <strong>nobody@elsewhere.test</strong>');
      expect(page.text).not.to.contain('Accept and become an admin');
    });

    it('refuses another account than the invited address, and says so', async () => {
      const admin = await signIn();
      const org = await createOrg(admin.agent);
      const link = await invite(admin.agent, org, 'invited@acme.test');
      const other = await signIn('someone.else@acme.test');
      await other.agent.get(link.replace(server.url, ''));
      const page = await other.agent.get('/admin/invitation');
      expect(page.text).to.contain('Sign in with the invited address').and.to.contain('You are signed in as <strong>someone.else@acme.test</strong>');
      expect(page.text).not.to.contain('Accept and become an admin');
      // No form is offered; a forged submit (with a token from another page) is refused too.
      const forced = await other.agent.post('/admin/invitation/accept').type('form').send({ _csrf: csrfFrom((await other.agent.get('/admin')).text) });
      expect(forced.status).to.equal(403);
      expect((await other.agent.get(org)).status).to.equal(404);
    });

    it('refuses an expired, a revoked and a replaced invitation', async () => {
      const admin = await signIn();
      const org = await createOrg(admin.agent);
      const invitee = await signIn('late@acme.test');
      const expiring = await invite(admin.agent, org, 'late@acme.test');
      now += (INVITATION_TTL + 1) * 1000;
      const expired = await invitee.agent.get(expiring.replace(server.url, ''));
      expect(expired.status).to.equal(410);
      expect(expired.text).to.contain('This invitation has expired');

      const revoked = await invite(admin.agent, org, 'late@acme.test');
      await invitee.agent.get(revoked.replace(server.url, ''));
      const accept = await invitee.agent.get('/admin/invitation');
      const page = await admin.agent.get(`${org}/admins`);
      const invitationId = /\/invitations\/(inv_[^/]+)\/revoke/.exec(page.text)![1]!;
      const res = await admin.agent.post(`${org}/invitations/${invitationId}/revoke`).type('form').send({ _csrf: csrfFrom(page.text) });
      expect(res.status).to.equal(303);
      expect((await admin.agent.get(`${org}/admins`)).text).to.contain('its link no longer works');
      const refused = await invitee.agent.post('/admin/invitation/accept').type('form').send({ _csrf: csrfFrom(accept.text) });
      expect(refused.status).to.equal(404);
      expect(refused.text).to.contain('This invitation can’t be used');
      expect((await invitee.agent.get(revoked.replace(server.url, ''))).status).to.equal(404);

      const first = await invite(admin.agent, org, 'late@acme.test');
      await invite(admin.agent, org, 'late@acme.test');
      expect((await invitee.agent.get(first.replace(server.url, ''))).status).to.equal(404);
      expect((await invitee.agent.get('/admin/organizations/x')).status).to.equal(404);
    });

    it('removes an admin after a confirmation, never the last one, and lets an admin leave', async () => {
      const admin = await signIn();
      const org = await createOrg(admin.agent);
      const onlyOne = await admin.agent.get(`${org}/leave`);
      expect(onlyOne.text).to.contain('You’re the only admin of Acme, so you can’t leave it').and.to.contain(`href="${org}/settings">delete the organization</a>`);
      expect(onlyOne.text).not.to.contain(`action="${org}/leave"`);
      const forced = await admin.agent.post(`${org}/leave`).type('form').send({ _csrf: csrfFrom((await admin.agent.get(`${org}/admins`)).text) });
      expect(forced.status).to.equal(409);
      expect(forced.text).to.contain('An organization needs an admin');

      const second = await signIn('second@acme.test');
      const link = await invite(admin.agent, org, 'second@acme.test');
      await second.agent.get(link.replace(server.url, ''));
      const page = await second.agent.get('/admin/invitation');
      await second.agent.post('/admin/invitation/accept').type('form').send({ _csrf: csrfFrom(page.text) });

      const confirm = await admin.agent.get(`${org}/admins/${second.id}/remove`);
      expect(confirm.text).to.contain('Remove second@acme.test?').and.to.contain('stops being an admin of Acme at once');
      const removed = await admin.agent.post(`${org}/admins/${second.id}/remove`).type('form').send({ _csrf: csrfFrom(confirm.text) });
      expect(removed.status).to.equal(303);
      expect((await admin.agent.get(`${org}/admins`)).text).to.contain('second@acme.test is no longer an admin');
      expect((await second.agent.get(org)).status).to.equal(404);

      // Back again, then the first admin leaves.
      const again = await invite(admin.agent, org, 'second@acme.test');
      await second.agent.get(again.replace(server.url, ''));
      const page2 = await second.agent.get('/admin/invitation');
      await second.agent.post('/admin/invitation/accept').type('form').send({ _csrf: csrfFrom(page2.text) });
      const leave = await admin.agent.get(`${org}/leave`);
      expect(leave.text).to.contain('Leave Acme?');
      const left = await admin.agent.post(`${org}/leave`).type('form').send({ _csrf: csrfFrom(leave.text) });
      expect(left.status).to.equal(303);
      expect(left.headers.location).to.equal('/admin');
      expect((await admin.agent.get('/admin')).text).to.contain('You left Acme');
      expect((await admin.agent.get(org)).status).to.equal(404);
      expect((await second.agent.get(org)).status).to.equal(200);
    });

    it('tells an admin who invites one address too often to wait (429, Retry-After), and sends no more mail meanwhile', async () => {
      const admin = await signIn();
      const org = await createOrg(admin.agent);
      const victim = 'flooded@elsewhere.test';
      const answers = [];
      // THROTTLE_FREE_ATTEMPTS (5) invitations, and the one that starts the first wait, go out.
      for (let i = 0; i < 7; i++) answers.push(await post(admin.agent, `${org}/admins`, `${org}/invitations`, { email: victim }));
      expect(answers.map((r) => r.status)).to.deep.equal([303, 303, 303, 303, 303, 303, 429]);
      const refused = answers[6]!;
      expect(refused.headers['retry-after']).to.match(/^[1-9]\d*$/);
      expect(refused.text).to.contain('Too many invitations').and.contain('Wait 2 seconds, then invite again');
      const queued = await server.registry.db.query(`SELECT 1 FROM mail_outbox WHERE template = 'organization-invitation' AND recipient = $1`, [victim]);
      expect(queued.rows).to.have.length(6);
    });

    it('answers 404 for revoking another organization’s invitation through one’s own', async () => {
      const a = await signIn();
      const b = await signIn();
      const orgA = await createOrg(a.agent, 'Org A');
      const orgB = await createOrg(b.agent, 'Org B');
      await post(b.agent, `${orgB}/admins`, `${orgB}/invitations`, { email: 'someone@b.test' });
      const invitationId = /\/invitations\/(inv_[^/]+)\/revoke/.exec((await b.agent.get(`${orgB}/admins`)).text)![1]!;
      const res = await post(a.agent, `${orgA}/admins`, `${orgA}/invitations/${invitationId}/revoke`);
      expect(res.status).to.equal(404);
      expect(res.text).to.contain('No such invitation');
      expect((await b.agent.get(`${orgB}/admins`)).text).to.contain('someone@b.test');
    });

    it('refuses an organization name made of zero-width spaces, and a public suffix as a domain, with their messages', async () => {
      const { agent } = await signIn();
      const bad = await post(agent, '/admin', '/admin/organizations', { name: '\u200B\u200B' });
      expect(bad.status).to.equal(400);
      expect(bad.text).to.contain('Check the name');
      const org = await createOrg(agent);
      const suffix = await post(agent, `${org}/domains`, `${org}/domains`, { domain: 'github.io' });
      expect(suffix.status).to.equal(400);
      expect(suffix.text).to.contain('public suffix');
    });
  });

  describe('audit log', () => {
    it('records every admin action with who, what, target and when, pages it, and exports a safe CSV', async () => {
      const admin = await signIn();
      const org = await createOrg(admin.agent, '=HYPERLINK("http://evil.test","x")');
      const { id, txtValue } = await addDomain(admin.agent, org, 'acme.test');
      await post(admin.agent, `${org}/domains`, `${org}/domains/${id}/verify`);
      dns.txt.set('acme.test', [[txtValue]]);
      await post(admin.agent, `${org}/domains`, `${org}/domains/${id}/verify`);
      const invited = await post(admin.agent, `${org}/admins`, `${org}/invitations`, { email: '-2+3@acme.test' });
      expect(invited.status).to.equal(303);
      const page = await admin.agent.get(`${org}/admins`);
      const invitationId = /\/invitations\/(inv_[^/]+)\/revoke/.exec(page.text)![1]!;
      await admin.agent.post(`${org}/invitations/${invitationId}/revoke`).type('form').send({ _csrf: csrfFrom(page.text) });

      const log = await admin.agent.get(`${org}/audit`);
      expect(log.status).to.equal(200);
      const rows = [...log.text.matchAll(/<tr><td>([^<]+)<\/td><td>([^<]+)<\/td><td>([^<]+)(?:<span[^>]*>[^<]*<\/span>)?<\/td><td>([^<]*)<\/td><\/tr>/g)].map((m) => [m[2], m[3]!.trim(), m[4]]);
      expect(rows).to.deep.equal([
        [admin.email, 'revoked the invitation of', '-2+3@acme.test'],
        [admin.email, 'invited', '-2+3@acme.test'],
        [admin.email, 'verified the domain', 'acme.test'],
        [admin.email, 'tried to verify the domain', 'acme.test'],
        [admin.email, 'added the domain', 'acme.test'],
        [admin.email, 'created the organization', '=HYPERLINK(&quot;http://evil.test&quot;,&quot;x&quot;)'],
      ]);
      expect(log.text).to.contain('2026-11-01 12:00 UTC');
      // The details in words, never the stored keys and codes (the CSV keeps those).
      expect(log.text).to.contain('(why: we couldn’t find your token yet)');
      expect(log.text).to.contain('(expires: 2026-11-04 12:00 UTC)'); // the test's invitation lifetime: three days
      expect(log.text).to.contain('(method: dns)');
      expect(log.text).not.to.match(/verification\.not_found|expiresAt/);

      const csv = await admin.agent.get(`${org}/audit.csv`).buffer(true).parse((res, done) => {
        let text = '';
        res.on('data', (c: Buffer) => { text += c.toString(); });
        res.on('end', () => done(null, text));
      });
      expect(csv.status).to.equal(200);
      expect(csv.headers['content-type']).to.match(/^text\/csv/);
      expect(csv.headers['content-disposition']).to.match(/^attachment; filename="audit-org_[A-Za-z0-9_-]+\.csv"$/);
      const lines = (csv.body as string).split('\r\n');
      expect(lines[0]).to.equal('time,actor,actor_id,action,target_type,target_id,target,detail,ip,request_id');
      expect(lines).to.have.length(8); // header, six records, the empty string after the last CRLF
      const created = lines.find((l) => l.includes('organization.created'))!;
      // A formula is defused with a leading quote, and quoted because it holds commas and quotes.
      expect(created).to.contain(`"'=HYPERLINK(""http://evil.test"",""x"")"`);
      expect(lines.find((l) => l.includes('invitation.sent'))).to.contain(`,'-2+3@acme.test,`);
      expect(lines.find((l) => l.includes('domain.verified'))).to.contain('"{""method"":""dns""}"');
      expect(lines.find((l) => l.includes('domain.verification_failed'))).to.contain('verification.not_found');

      // The table refuses changes.
      let refused = false;
      try {
        await server.registry.db.query(`UPDATE organization_events SET action = 'domain.removed'`);
      } catch {
        refused = true;
      }
      expect(refused).to.equal(true);
    });

    it('pages the log 25 at a time, newest first', async () => {
      const admin = await signIn();
      const org = await createOrg(admin.agent);
      for (let i = 0; i < 30; i += 1) await post(admin.agent, `${org}/domains`, `${org}/domains`, { domain: `d${i}.acme.test` });
      const first = await admin.agent.get(`${org}/audit`);
      expect(first.text.match(/<tr><td>/g)).to.have.length(25);
      expect(first.text).to.contain('d29.acme.test');
      const next = /href="([^"]+\/audit\?before=\d+)" rel="next"/.exec(first.text)![1]!;
      const second = await admin.agent.get(next);
      expect(second.text.match(/<tr><td>/g)).to.have.length(6);
      expect(second.text).to.contain('created the organization').and.to.contain('d0.acme.test');
      expect(second.text).not.to.contain('rel="next"');
      expect((await admin.agent.get(`${org}/audit?before=nonsense`)).status).to.equal(200);
    });
  });

  it('csvCell defuses formulas and quotes as RFC 4180 says', () => {
    expect(csvCell('=1+1')).to.equal(`'=1+1`);
    expect(csvCell('+1')).to.equal(`'+1`);
    expect(csvCell('-1')).to.equal(`'-1`);
    expect(csvCell('@SUM(A1)')).to.equal(`'@SUM(A1)`);
    expect(csvCell('\t=1')).to.equal(`'\t=1`);
    expect(csvCell('a,b')).to.equal('"a,b"');
    expect(csvCell('say "hi"')).to.equal('"say ""hi"""');
    expect(csvCell('line\nbreak')).to.equal('"line\nbreak"');
    expect(csvCell(null)).to.equal('');
    expect(csvCell('plain')).to.equal('plain');
  });
});
