import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount } from '../../helpers/factories.ts';
import { startDns, type TestDns } from '../../helpers/dns-server.ts';
import { startSmtp, type TestSmtp } from '../../helpers/smtp.ts';
import { signInToAccount, type Agent, postForm as post } from '../../helpers/account-pages.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import type { Clock } from '../../../src/shared/clock.ts';

/**
 * The console's pages for claiming and managed accounts, as a browser without JavaScript uses
 * them: domains verified against a real DNS server on loopback, claim mail through a real SMTP
 * server, logins through the real pages.
 */
describe('organizations: admin console, managed accounts', () => {
  let dns: TestDns;
  let smtp: TestSmtp;
  let server: TestServer;
  let now = Date.UTC(2026, 10, 1, 12);
  const clock: Clock = { now: () => now };

  before(async () => {
    dns = await startDns();
  });
  after(async () => {
    await dns.close();
  });
  beforeEach(async () => {
    await resetDatabase();
    dns.txt.clear();
    now = Date.UTC(2026, 10, 1, 12);
    smtp = await startSmtp();
    server = await startTestServer({
      clock,
      overrides: { smtpUrl: smtp.url, dnsServers: [dns.server], domainVerification: { httpScheme: 'http', httpPort: 9, timeoutSeconds: 2, recheckIntervalSeconds: 3600 } },
    });
  });
  afterEach(async () => {
    await server.close();
    await smtp.close();
  });

  async function signIn(email: string): Promise<{ agent: Agent; email: string; id: string }> {
    const account = await createAccount(server.registry, { email });
    const { agent, status } = await signInToAccount(server.url, account.email);
    expect(status).to.equal(200);
    return { agent, email: account.email, id: account.id };
  }

  async function createOrg(agent: Agent, name = 'Acme'): Promise<string> {
    const res = await post(agent, '/admin', '/admin/organizations', { name });
    expect(res.status).to.equal(303);
    return res.headers.location!;
  }

  /** Adds the domain through the Domains page and verifies it by its TXT record on the test DNS server. */
  async function verifyDomain(agent: Agent, org: string, domain: string): Promise<string> {
    const res = await post(agent, `${org}/domains`, `${org}/domains`, { domain });
    expect(res.status).to.equal(303);
    const id = /#(dom_[^&]+)$/.exec(res.headers.location!)![1]!;
    const page = await agent.get(`${org}/domains`);
    const token = new RegExp(`id="txt-value-${id}" type="text" readonly value="([^"]+)"`).exec(page.text)![1]!;
    dns.txt.set(domain, [[token]]);
    const verified = await post(agent, `${org}/domains`, `${org}/domains/${id}/verify`);
    expect(verified.status).to.equal(303);
    return id;
  }

  /** Accounts without a password (quick to create), on the given addresses. */
  async function people(entries: [string, string?][]) {
    const made = [];
    for (const [email, name] of entries) made.push(await server.registry.accounts.create({ email, name, emailVerified: true }));
    return made;
  }

  /** An organization whose admin (on admins.test) verified acme.test and claimed its accounts through the pages. */
  async function claimedOrg(entries: [string, string?][], adminEmail = 'admin@admins.test') {
    const admin = await signIn(adminEmail);
    const accounts = await people(entries);
    const org = await createOrg(admin.agent);
    const domainId = await verifyDomain(admin.agent, org, 'acme.test');
    const claimed = await post(admin.agent, `${org}/domains/${domainId}/claim`, `${org}/domains/${domainId}/claim`);
    expect(claimed.status).to.equal(303);
    const ids = Object.fromEntries(accounts.map((a) => [a.email, a.id]));
    return { admin, org, domainId, ids };
  }

  const statusOf = async (id: string) => (await server.registry.accounts.findById(id))!;
  const rows = (html: string) => [...html.matchAll(/<tr><td><input type="checkbox" name="id" value="([^"]+)"/g)].map((m) => m[1]!);
  const text = async (agent: Agent, path: string) => {
    const res = await agent.get(path).buffer(true).parse((r, done) => {
      let body = '';
      r.on('data', (c: Buffer) => { body += c.toString(); });
      r.on('end', () => done(null, body));
    });
    return { status: res.status, headers: res.headers, body: res.body as string };
  };

  describe('claiming', () => {
    it('previews what a claim takes, page by page and what happens to each person, then claims with a count', async () => {
      const admin = await signIn('admin@admins.test');
      const names = Array.from({ length: 52 }, (_, i) => [`p${String(i).padStart(2, '0')}@acme.test`, `Person ${i}`] as [string, string]);
      await people([...names, ['outsider@acme.test.example']]);
      const org = await createOrg(admin.agent, 'Acme');
      const domainId = await verifyDomain(admin.agent, org, 'acme.test');

      const domains = await admin.agent.get(`${org}/domains`);
      expect(domains.text).to.contain(`href="${org}/domains/${domainId}/claim">Review accounts to claim on acme.test</a>`);
      const preview = await admin.agent.get(`${org}/domains/${domainId}/claim`);
      expect(preview.status).to.equal(200);
      expect(preview.text).to.contain('<strong>52</strong> accounts use an address on acme.test and no organization manages them yet');
      expect(preview.text).to.contain('Each person is mailed that Acme now manages their account');
      expect(preview.text).to.contain('They can no longer change their email address or close their account themselves');
      expect(preview.text.match(/<tr><td>p\d\d@acme\.test<\/td>/g)).to.have.length(50);
      expect(preview.text).to.contain('<button type="submit" class="primary">Claim 52 accounts</button>');
      expect(preview.text).not.to.contain('outsider');
      const next = /href="([^"]+\/claim\?after=[^"]+)" rel="next"/.exec(preview.text)![1]!;
      const second = await admin.agent.get(next.replace(/&amp;/g, '&'));
      expect(second.text.match(/<tr><td>p\d\d@acme\.test<\/td>/g)).to.deep.equal(['<tr><td>p50@acme.test</td>', '<tr><td>p51@acme.test</td>']);
      expect(second.text).not.to.contain('rel="next"');
      expect((await server.registry.db.query('SELECT 1 FROM account_managers')).rows, 'a preview changes nothing').to.have.length(0);

      // Without its CSRF token the claim is refused; with it, Post/Redirect/Get to the list with the count.
      expect((await admin.agent.post(`${org}/domains/${domainId}/claim`).type('form').send({})).status).to.equal(403);
      const claimed = await admin.agent.post(`${org}/domains/${domainId}/claim`).type('form').send({ _csrf: csrfFrom(preview.text) });
      expect(claimed.status).to.equal(303);
      expect(claimed.headers.location).to.equal(`${org}/accounts`);
      const list = await admin.agent.get(`${org}/accounts`);
      expect(list.text).to.contain('52 accounts were claimed. Each person is being told by email.');
      expect(rows(list.text)).to.have.length(50);
      expect((await admin.agent.get(`${org}/accounts`)).text, 'the flash is shown once').not.to.contain('were claimed');
      await server.registry.background.idle();
      await server.registry.mail.delivery.deliverDue();
      const mail = await smtp.lastTo('p07@acme.test', 'Your organization now manages your Lanyard account');
      expect(mail.text).to.contain('Acme');

      const again = await admin.agent.get(`${org}/domains/${domainId}/claim`);
      expect(again.text).to.contain('No account on acme.test is left to claim');
      expect(again.text).not.to.contain('Claim 0');
      const dashboard = await admin.agent.get(org);
      expect(dashboard.text).to.contain(`<a href="${org}/accounts" id="managed-count">52</a>`);
      expect(dashboard.text).to.match(/admin@admins\.test claimed the accounts of the domain acme\.test/);
    });

    it('says claims are frozen for a failing domain, and that a pending one must be verified first', async () => {
      const admin = await signIn('admin@admins.test');
      await people([['ada@acme.test']]);
      const org = await createOrg(admin.agent);
      const domainId = await verifyDomain(admin.agent, org, 'acme.test');
      const preview = await admin.agent.get(`${org}/domains/${domainId}/claim`);
      await server.registry.db.query(`UPDATE organization_domains SET state = 'failing', failing_since = now(), last_error = 'verification.not_found' WHERE id = $1`, [domainId]);

      const frozen = await admin.agent.get(`${org}/domains/${domainId}/claim`);
      expect(frozen.status).to.equal(409);
      expect(frozen.text).to.contain('Claims are frozen for this domain').and.to.contain('Accounts it already manages stay managed');
      expect(frozen.text).not.to.contain('Claim 1 account');
      expect((await admin.agent.get(`${org}/domains`)).text).to.contain('Claims are frozen: no new account on acme.test is claimed until it verifies again.');
      const refused = await admin.agent.post(`${org}/domains/${domainId}/claim`).type('form').send({ _csrf: csrfFrom(preview.text) });
      expect(refused.status).to.equal(409);
      expect(refused.text).to.contain('Claims are frozen for this domain');
      expect((await server.registry.db.query('SELECT 1 FROM account_managers')).rows).to.have.length(0);

      const added = await post(admin.agent, `${org}/domains`, `${org}/domains`, { domain: 'pending.test' });
      const pendingId = /#(dom_[^&]+)$/.exec(added.headers.location!)![1]!;
      const pending = await admin.agent.get(`${org}/domains/${pendingId}/claim`);
      expect(pending.status).to.equal(409);
      expect(pending.text).to.contain('Verify the domain first');
    });
  });

  describe('the list', () => {
    it('lists with paging, searches by address or name, filters by status, and exports what it shows as CSV', async () => {
      const filler = Array.from({ length: 52 }, (_, i) => [`z${String(i).padStart(2, '0')}@acme.test`] as [string]);
      const { admin, org, ids } = await claimedOrg([['alice@acme.test', 'Alice Archer'], ['bert@acme.test', 'Bert Baker'], ['=cmd@acme.test', '=HYPERLINK("http://x")'], ...filler]);
      const first = await admin.agent.get(`${org}/accounts`);
      expect(first.status).to.equal(200);
      expect(rows(first.text)).to.have.length(50);
      expect(rows(first.text)[0]).to.equal(ids['=cmd@acme.test']);
      expect(first.text).to.contain('=HYPERLINK(&quot;http://x&quot;)');
      const next = /href="([^"]+)" rel="next">Next page/.exec(first.text)![1]!.replace(/&amp;/g, '&');
      const second = await admin.agent.get(next);
      expect(rows(second.text)).to.have.length(5);
      expect(second.text).to.contain('First page');

      const byAddress = await admin.agent.get(`${org}/accounts?q=ALI`);
      expect(rows(byAddress.text)).to.deep.equal([ids['alice@acme.test']]);
      expect(byAddress.text).to.contain('value="ALI"').and.to.contain('1 account match');
      const byName = await admin.agent.get(`${org}/accounts?q=${encodeURIComponent('bert b')}`);
      expect(rows(byName.text)).to.deep.equal([ids['bert@acme.test']]);
      expect(rows((await admin.agent.get(`${org}/accounts?q=nobody`)).text)).to.deep.equal([]);
      expect((await admin.agent.get(`${org}/accounts?q=nobody`)).text).to.contain('No account matches.');

      const managed = server.registry.organizations.managedAccounts;
      const orgId = org.split('/').pop()!;
      await managed.deactivate(admin.id, orgId, ids['alice@acme.test']);
      await managed.delete(admin.id, orgId, ids['bert@acme.test']);
      expect(rows((await admin.agent.get(`${org}/accounts?status=deactivated`)).text)).to.deep.equal([ids['alice@acme.test']]);
      const pending = await admin.agent.get(`${org}/accounts?status=pending_deletion`);
      expect(rows(pending.text)).to.deep.equal([ids['bert@acme.test']]);
      expect(pending.text).to.contain('<option value="pending_deletion" selected>').and.to.contain('erased 2026-11-15 12:00 UTC');

      for (const bad of ['?status=erased', '?q=a&q=b', `?q=${'x'.repeat(400)}`]) {
        const res = await admin.agent.get(`${org}/accounts${bad}`);
        expect(res.status, bad).to.equal(400);
        expect(res.text).to.contain('Check the search');
      }

      // The export follows the search and the filter, and defuses formulas for spreadsheets.
      expect(first.text).to.contain(`href="${org}/accounts.csv" download`);
      expect(byAddress.text).to.contain(`href="${org}/accounts.csv?q=ALI" download`);
      const csv = await text(admin.agent, `${org}/accounts.csv?q=ALI`);
      expect(csv.status).to.equal(200);
      expect(csv.headers['content-type']).to.match(/^text\/csv/);
      expect(csv.headers['content-disposition']).to.match(/^attachment; filename="managed-accounts-org_[A-Za-z0-9_-]+\.csv"$/);
      const lines = csv.body.trimEnd().split('\r\n');
      expect(lines).to.have.length(2);
      expect(lines[0]).to.equal('id,email,name,status,delete_after,created_at,managed_since');
      expect(lines[1]).to.match(new RegExp(`^${ids['alice@acme.test']},alice@acme\\.test,Alice Archer,deactivated,,`));
      const all = (await text(admin.agent, `${org}/accounts.csv`)).body.trimEnd().split('\r\n');
      expect(all).to.have.length(56);
      expect(all[1]).to.match(/^acc_[^,]+,'=cmd@acme\.test,"'=HYPERLINK\(""http:\/\/x""\)",active,/);
      expect((await admin.agent.get(`${org}/accounts.csv?status=erased`)).status).to.equal(400);
    });

    it('enhances the search with a static script only: the CSP allows no inline script, and the page works without it', async () => {
      const { admin, org } = await claimedOrg([['alice@acme.test']]);
      const page = await admin.agent.get(`${org}/accounts`);
      expect(page.text).to.contain('<script src="/static/admin-accounts.js" defer></script>');
      expect(page.text.match(/<script/g)).to.have.length(1);
      const csp = page.headers['content-security-policy']!;
      expect(csp).to.contain("script-src 'self';").and.to.contain("connect-src 'self';");
      expect(csp).not.to.contain('unsafe-inline');
      expect(page.text).to.match(/<form method="get" action="[^"]+\/accounts" role="search" id="account-search"/);
      const script = await supertest(server.url).get('/static/admin-accounts.js');
      expect(script.status).to.equal(200);
      expect(script.headers['content-type']).to.match(/^text\/javascript/);
      expect(script.text).to.contain("getElementById('account-results')");
      // The dashboard and the settings pages load no script.
      expect((await admin.agent.get(org)).text).not.to.contain('<script');
    });
  });

  describe('one account', () => {
    it('edits the name, and the address only onto another verified domain of the organization, with the service’s refusal shown', async () => {
      const { admin, org, ids } = await claimedOrg([['alice@acme.test', 'Alice Archer'], ['bert@acme.test']]);
      await verifyDomain(admin.agent, org, 'acme-labs.test');
      const path = `${org}/accounts/${ids['alice@acme.test']}`;
      const page = await admin.agent.get(path);
      expect(page.status).to.equal(200);
      expect(page.text).to.contain('<h1>alice@acme.test</h1>').and.to.contain('value="Alice Archer"');
      const rule = /id="email-rule">([^<]*)</.exec(page.text)![1]!;
      expect(rule).to.contain('The address can only move to a verified domain of Acme (').and.to.contain('acme.test').and.to.contain('acme-labs.test');

      const elsewhere = await admin.agent.post(path).type('form').send({ _csrf: csrfFrom(page.text), name: 'Alice Archer', email: 'alice@private.test' });
      expect(elsewhere.status).to.equal(400);
      expect(elsewhere.text).to.contain('That address is not on a verified domain of this organization');
      expect(elsewhere.text).to.contain('value="alice@private.test"').and.to.contain('aria-invalid="true"');
      const taken = await admin.agent.post(path).type('form').send({ _csrf: csrfFrom(page.text), name: 'Alice Archer', email: 'bert@acme.test' });
      expect(taken.status).to.equal(400);
      expect(taken.text).to.contain('That address is taken');
      const badName = await admin.agent.post(path).type('form').send({ _csrf: csrfFrom(page.text), name: 'x'.repeat(201), email: 'alice@acme.test' });
      expect(badName.text).to.contain('Check the name');

      const saved = await admin.agent.post(path).type('form').send({ _csrf: csrfFrom(page.text), name: 'Alice Cooper', email: 'Alice@Acme-Labs.test' });
      expect(saved.status).to.equal(303);
      expect(saved.headers.location).to.equal(path);
      const after = await admin.agent.get(path);
      expect(after.text).to.contain('Saved.').and.to.contain('<h1>alice@acme-labs.test</h1>').and.to.contain('value="Alice Cooper"');
      expect((await statusOf(ids['alice@acme.test']!)).email).to.equal('alice@acme-labs.test');
      expect((await admin.agent.get(org)).text).to.contain('edited the account alice@acme-labs.test');
    });

    it('deactivates and deletes only after a page that says exactly what happens; reactivates and cancels a deletion', async () => {
      const bob = await createAccount(server.registry, { email: 'bob@acme.test' });
      const { admin, org } = await claimedOrg([]);
      const path = `${org}/accounts/${bob.id}`;
      const page = await admin.agent.get(path);
      expect(page.text).to.contain(`href="${path}/deactivate">Deactivate bob@acme.test</a>`);

      const confirm = await admin.agent.get(`${path}/deactivate`);
      expect(confirm.status).to.equal(200);
      expect(confirm.text).to.contain('Deactivate bob@acme.test?');
      expect(confirm.text).to.contain('Deactivating bob@acme.test signs them out of Jira, Confluence, Bitbucket, Trello and every other app they use with this account now');
      expect(confirm.text).to.contain('It revokes their access and refresh tokens, and refuses their logins until an admin reactivates the account.');
      expect((await statusOf(bob.id)).status, 'the confirmation changes nothing').to.equal('active');
      expect((await admin.agent.post(`${path}/deactivate`).type('form').send({})).status, 'no CSRF token').to.equal(403);
      const deactivated = await admin.agent.post(`${path}/deactivate`).type('form').send({ _csrf: csrfFrom(confirm.text) });
      expect(deactivated.status).to.equal(303);
      expect(deactivated.headers.location).to.equal(path);
      const shown = await admin.agent.get(path);
      expect(shown.text).to.contain('bob@acme.test is deactivated: signed out everywhere').and.to.contain('>Deactivated</span>');
      expect((await signInToAccount(server.url, 'bob@acme.test')).status, 'login refused').not.to.equal(200);

      // Again: the state no longer allows it, and the page says so instead of offering the button.
      const stale = await admin.agent.get(`${path}/deactivate`);
      expect(stale.text).to.contain('The account’s state doesn’t allow that');
      expect(stale.text).not.to.contain('class="primary danger"');
      const twice = await admin.agent.post(`${path}/deactivate`).type('form').send({ _csrf: csrfFrom(confirm.text) });
      expect(twice.status).to.equal(409);

      const reactivated = await admin.agent.post(`${path}/reactivate`).type('form').send({ _csrf: csrfFrom(shown.text) });
      expect(reactivated.status).to.equal(303);
      expect((await admin.agent.get(path)).text).to.contain('bob@acme.test is active again and can sign in.');
      expect((await signInToAccount(server.url, 'bob@acme.test')).status).to.equal(200);

      const deleting = await admin.agent.get(`${path}/delete`);
      expect(deleting.text).to.contain('Delete bob@acme.test?');
      expect(deleting.text).to.contain('bob@acme.test is deactivated now: signed out of Jira');
      expect(deleting.text).to.contain('On <strong>2026-11-15 12:00 UTC</strong> (in 14 days) the account is erased');
      expect(deleting.text).to.contain('Until then an admin can cancel the deletion or reactivate the account.');
      const deleted = await admin.agent.post(`${path}/delete`).type('form').send({ _csrf: csrfFrom(deleting.text) });
      expect(deleted.status).to.equal(303);
      const pending = await admin.agent.get(path);
      expect(pending.text).to.contain('bob@acme.test is deactivated and will be erased on 2026-11-15 12:00 UTC.');
      expect(pending.text).to.contain('will be <strong>erased on 2026-11-15 12:00 UTC</strong>');
      expect((await statusOf(bob.id)).delete_after?.toISOString()).to.equal('2026-11-15T12:00:00.000Z');

      const cancelled = await admin.agent.post(`${path}/cancel-deletion`).type('form').send({ _csrf: csrfFrom(pending.text) });
      expect(cancelled.status).to.equal(303);
      const kept = await admin.agent.get(path);
      expect(kept.text).to.contain('The deletion of bob@acme.test was cancelled. The account stays deactivated');
      expect([(await statusOf(bob.id)).status, (await statusOf(bob.id)).delete_after]).to.deep.equal(['deactivated', null]);
      // A reload of an action's address is a person looking for the page.
      const reload = await admin.agent.get(`${path}/cancel-deletion`);
      expect(reload.status).to.equal(303);
      expect(reload.headers.location).to.equal(path);

      const recent = (await admin.agent.get(org)).text;
      for (const what of ['deactivated the account bob@acme.test', 'reactivated the account bob@acme.test', 'scheduled the deletion of the account bob@acme.test', 'cancelled the deletion of the account bob@acme.test']) expect(recent).to.contain(what);
    });

    it('tells an admin whose own account the organization manages that they can’t act on themselves', async () => {
      const { admin, org } = await claimedOrg([], 'admin@acme.test');
      const list = await admin.agent.get(`${org}/accounts`);
      expect(rows(list.text)).to.deep.equal([admin.id]);
      expect(list.text).to.contain('<span class="badge">You</span>');
      const path = `${org}/accounts/${admin.id}`;
      const page = await admin.agent.get(path);
      expect(page.text).to.contain('This is your own account. Admins can’t edit, deactivate or delete their own account here');
      expect(page.text).not.to.contain(`action="${path}`);
      const confirm = await admin.agent.get(`${path}/deactivate`);
      expect(confirm.text).to.contain('This is your own account');
      expect(confirm.text).not.to.contain('class="primary danger"');
      const token = csrfFrom((await admin.agent.get(`${org}/domains`)).text);
      const forced = await admin.agent.post(`${path}/deactivate`).type('form').send({ _csrf: token });
      expect(forced.status).to.equal(409);
      expect(forced.text).to.contain('This is your own account');
      const edit = await admin.agent.post(path).type('form').send({ _csrf: token, name: 'Me', email: 'admin@acme.test' });
      expect(edit.status).to.equal(409);
      expect((await statusOf(admin.id)).status).to.equal('active');
    });
  });

  describe('bulk actions', () => {
    it('confirms naming the count and listing the accounts, leaves out what it can’t do and says why, then acts', async () => {
      const foreign = await people([['bo@beta.test']]);
      const { admin, org, ids } = await claimedOrg([['alice@acme.test'], ['bert@acme.test'], ['cleo@acme.test'], ['dora@acme.test']], 'admin@acme.test');
      const orgId = org.split('/').pop()!;
      await server.registry.organizations.managedAccounts.deactivate(admin.id, orgId, ids['dora@acme.test']);
      const list = await admin.agent.get(`${org}/accounts`);
      expect(list.text).to.match(new RegExp(`<form method="get" action="${org}/accounts/bulk" id="bulk">`));
      expect(list.text).to.contain('<button type="submit" name="action" value="deactivate" class="secondary">Deactivate</button>');

      const selected = [ids['alice@acme.test'], ids['bert@acme.test'], ids['dora@acme.test'], admin.id, foreign[0]!.id];
      const query = `action=deactivate&${selected.map((id) => `id=${id}`).join('&')}`;
      const confirm = await admin.agent.get(`${org}/accounts/bulk?${query}`);
      expect(confirm.status).to.equal(200);
      expect(confirm.text).to.contain('<h1>Deactivate 2 accounts?</h1>');
      expect(confirm.text).to.contain('What happens to each of these 2 accounts:');
      expect(confirm.text).to.contain('Signed out now of Jira, Confluence, Bitbucket, Trello');
      expect(confirm.text).to.match(/id="bulk-accounts">[\s\S]*alice@acme\.test[\s\S]*bert@acme\.test[\s\S]*<\/ul>/);
      expect(confirm.text).to.contain('dora@acme.test: not active').and.to.contain('admin@acme.test: your own account');
      expect(confirm.text).to.contain('1 selected account is no longer managed by this organization');
      expect(confirm.text).not.to.contain('bo@beta.test');
      expect(confirm.text).to.contain('Deactivate 2 accounts</button>');
      for (const id of [ids['alice@acme.test']!, ids['bert@acme.test']!]) expect((await statusOf(id)).status, 'confirming changes nothing').to.equal('active');

      expect((await admin.agent.post(`${org}/accounts/bulk`).type('form').send({ action: 'deactivate', ids: selected.join(' ') })).status, 'no CSRF token').to.equal(403);
      const done = await admin.agent.post(`${org}/accounts/bulk`).type('form').send({ _csrf: csrfFrom(confirm.text), action: 'deactivate', ids: [ids['alice@acme.test'], ids['bert@acme.test']].join(' ') });
      expect(done.status).to.equal(303);
      expect(done.headers.location).to.equal(`${org}/accounts`);
      expect((await admin.agent.get(`${org}/accounts`)).text).to.contain('Deactivated: 2 accounts.');
      for (const id of [ids['alice@acme.test']!, ids['bert@acme.test']!]) expect((await statusOf(id)).status).to.equal('deactivated');

      // A forged selection through the confirmed form: what can't be done is counted, never done.
      const forged = await admin.agent.post(`${org}/accounts/bulk`).type('form').send({ _csrf: csrfFrom(confirm.text), action: 'delete', ids: [ids['alice@acme.test'], admin.id, foreign[0]!.id].join(' ') });
      expect(forged.status).to.equal(303);
      expect((await admin.agent.get(`${org}/accounts`)).text).to.contain('Scheduled for deletion: 1 account. 2 accounts were left out');
      expect((await statusOf(admin.id)).status).to.equal('active');
      expect((await statusOf(foreign[0]!.id)).status).to.equal('active');
      expect((await statusOf(ids['alice@acme.test']!)).delete_after).not.to.equal(null);

      const back = await admin.agent.get(`${org}/accounts/bulk?action=reactivate&id=${ids['alice@acme.test']}&id=${ids['bert@acme.test']}&id=${ids['cleo@acme.test']}`);
      expect(back.text).to.contain('<h1>Reactivate 2 accounts?</h1>').and.to.contain('cleo@acme.test: already active');
      await admin.agent.post(`${org}/accounts/bulk`).type('form').send({ _csrf: csrfFrom(back.text), action: 'reactivate', ids: [ids['alice@acme.test'], ids['bert@acme.test']].join(' ') });
      for (const id of [ids['alice@acme.test']!, ids['bert@acme.test']!]) expect([(await statusOf(id)).status, (await statusOf(id)).delete_after]).to.deep.equal(['active', null]);
    });

    it('bounds a bulk action to 100 accounts, and asks for a selection and an action', async () => {
      const { admin, org, ids } = await claimedOrg([['alice@acme.test']]);
      const many = Array.from({ length: 101 }, (_, i) => `id=acc_${i}`).join('&');
      const tooMany = await admin.agent.get(`${org}/accounts/bulk?action=delete&${many}`);
      expect(tooMany.status).to.equal(400);
      expect(tooMany.text).to.contain('Too many accounts at once').and.to.contain('at most 100 accounts');
      const page = await admin.agent.get(`${org}/domains`);
      const posted = await admin.agent.post(`${org}/accounts/bulk`).type('form').send({ _csrf: csrfFrom(page.text), action: 'delete', ids: Array.from({ length: 101 }, (_, i) => `acc_${i}`).join(' ') });
      expect(posted.status).to.equal(400);
      expect(posted.text).to.contain('Too many accounts at once');
      const none = await admin.agent.get(`${org}/accounts/bulk?action=delete`);
      expect(none.status).to.equal(400);
      expect(none.text).to.contain('No account selected');
      const noAction = await admin.agent.get(`${org}/accounts/bulk?id=${ids['alice@acme.test']}`);
      expect(noAction.status).to.equal(400);
      expect(noAction.text).to.contain('Choose an action');
      const bogus = await admin.agent.post(`${org}/accounts/bulk`).type('form').send({ _csrf: csrfFrom(page.text), action: 'erase', ids: ids['alice@acme.test'] });
      expect(bogus.status).to.equal(400);
      expect((await statusOf(ids['alice@acme.test']!)).status).to.equal('active');
    });
  });

  it('answers 404 to anyone but that organization’s admins, for every page and action, and changes nothing', async () => {
    const a = await claimedOrg([['alice@acme.test']]);
    const alice = a.ids['alice@acme.test']!;
    const b = await signIn('boss@beta.test');
    const orgB = await createOrg(b.agent, 'Beta');
    const missing = await b.agent.get('/admin/organizations/org_doesnotexist');
    const paths = ['/accounts', '/accounts.csv', `/accounts/${alice}`, `/accounts/${alice}/deactivate`, `/accounts/${alice}/delete`, `/accounts/bulk?action=deactivate&id=${alice}`, `/domains/${a.domainId}/claim`];
    for (const path of paths) {
      const res = await b.agent.get(`${a.org}${path}`);
      expect(res.status, path).to.equal(404);
      expect(res.text.replace(/Reference: <code>[^<]*<\/code>/, '')).to.equal(missing.text.replace(/Reference: <code>[^<]*<\/code>/, ''));
    }
    // A's account and A's domain through B's own organization: not found either.
    for (const path of [`/accounts/${alice}`, `/accounts/${alice}/deactivate`, `/domains/${a.domainId}/claim`]) expect((await b.agent.get(`${orgB}${path}`)).status, path).to.equal(404);
    const csrf = csrfFrom((await b.agent.get(`${orgB}/domains`)).text);
    const posts: [string, Record<string, string>][] = [
      [`${a.org}/domains/${a.domainId}/claim`, {}], [`${a.org}/accounts/${alice}`, { name: 'Mallory', email: 'alice@acme.test' }],
      ...['deactivate', 'reactivate', 'delete', 'cancel-deletion'].map((act): [string, Record<string, string>] => [`${a.org}/accounts/${alice}/${act}`, {}]),
      [`${a.org}/accounts/bulk`, { action: 'deactivate', ids: alice }],
      [`${orgB}/accounts/${alice}/deactivate`, {}], [`${orgB}/domains/${a.domainId}/claim`, {}],
    ];
    for (const [path, fields] of posts) expect((await b.agent.post(path).type('form').send({ _csrf: csrf, ...fields })).status, path).to.equal(404);
    // B's bulk form with A's account: B's organization does not manage it, so nothing is done.
    const bulk = await b.agent.post(`${orgB}/accounts/bulk`).type('form').send({ _csrf: csrf, action: 'deactivate', ids: alice });
    expect(bulk.status).to.equal(303);
    expect((await b.agent.get(`${orgB}/accounts`)).text).to.contain('Deactivated: 0 accounts. 1 account was left out');
    // A member of A who is not an admin: the same 404.
    const member = await signIn('member@admins.test');
    await server.registry.db.query(`INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'member', now())`, [a.org.split('/').pop(), member.id]);
    for (const path of ['/accounts', `/accounts/${alice}`]) expect((await member.agent.get(`${a.org}${path}`)).status).to.equal(404);
    const alices = await statusOf(alice);
    expect([alices.status, alices.name, alices.delete_after]).to.deep.equal(['active', null, null]);
    expect((await server.registry.db.query(`SELECT 1 FROM organization_events WHERE action LIKE 'account.%'`)).rows).to.have.length(0);
  });
});
