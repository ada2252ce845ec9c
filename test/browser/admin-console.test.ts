import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { resetDatabase } from '../helpers/db.ts';
import { createAccount, PASSWORD } from '../helpers/factories.ts';
import { launchChromium } from '../helpers/browser.ts';
import { startSmtp, linkIn, type TestSmtp } from '../helpers/smtp.ts';
import { startDns, type TestDns } from '../helpers/dns-server.ts';

/** The admin console in real Chromium: create an organization, add and verify a domain, invite an admin. */
describe('browser: admin console', function () {
  this.timeout(60_000);
  let browser: Browser;
  let server: TestServer;
  let smtp: TestSmtp;
  let dns: TestDns;
  let context: BrowserContext;

  before(async () => {
    browser = await launchChromium();
    dns = await startDns();
  });
  after(async () => {
    await browser?.close();
    await dns?.close();
  });
  beforeEach(async () => {
    await resetDatabase();
    dns.txt.clear();
    smtp = await startSmtp();
    server = await startTestServer({ overrides: { smtpUrl: smtp.url, dnsServers: [dns.server], domainVerification: { httpScheme: 'http', httpPort: 9, timeoutSeconds: 1, recheckIntervalSeconds: 0 } } });
    context = await browser.newContext();
  });
  afterEach(async () => {
    await context.close();
    await server.close();
    await smtp.close();
  });

  async function signIn(page: Page, email: string) {
    await page.goto(`${server.url}/account`);
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${server.url}/account`);
  }

  it('creates an organization, adds and verifies a domain, and invites an admin', async () => {
    const account = await createAccount(server.registry, { email: 'owner@acme.test' });
    const page = await context.newPage();
    await signIn(page, account.email);

    await page.goto(`${server.url}/admin`);
    await page.getByLabel('Organization name').fill('Acme');
    await page.getByRole('button', { name: 'Create organization' }).click();
    expect(await page.getByRole('heading', { name: 'Acme', level: 1 }).isVisible()).to.equal(true);
    expect(await page.getByRole('status').textContent()).to.contain('Organization created');

    await page.getByRole('link', { name: 'Domains' }).click();
    await page.getByLabel('Domain', { exact: true }).fill('acme.test');
    await page.getByRole('button', { name: 'Add domain' }).click();
    const txtValue = await page.getByLabel('Value').inputValue();
    expect(txtValue).to.match(/^lanyard-domain-verification=/);

    await page.getByRole('button', { name: 'Verify now: acme.test' }).click();
    expect(await page.getByRole('alert').textContent()).to.contain('We couldn’t find your token yet');
    expect(await page.locator('#verification-result').textContent()).to.contain('DNS TXT record');

    dns.txt.set('acme.test', [[txtValue]]);
    await page.getByRole('button', { name: 'Verify now: acme.test' }).click();
    expect(await page.getByRole('status').textContent()).to.contain('Verified');
    expect(await page.locator('#domains').textContent()).to.contain('verified');
    // "Verify now" and "Remove" sit side by side, on one line through their centres.
    const button = (await page.getByRole('button', { name: 'Verify now: acme.test' }).boundingBox())!;
    const remove = (await page.getByRole('link', { name: 'Remove acme.test' }).boundingBox())!;
    expect(Math.abs((button.y + button.height / 2) - (remove.y + remove.height / 2))).to.be.lessThan(2);
    expect(remove.x).to.be.greaterThan(button.x + button.width);

    await page.getByRole('link', { name: 'Admins' }).click();
    await page.getByLabel('Email address').fill('second@acme.test');
    await page.getByRole('button', { name: 'Send invitation' }).click();
    expect(await page.getByRole('status').textContent()).to.contain('Invitation sent to second@acme.test');
    expect(await page.locator('#invitations').textContent()).to.contain('second@acme.test');

    await server.registry.background.idle();
    await server.registry.mail.delivery.deliverDue();
    const link = linkIn(await smtp.lastTo('second@acme.test'), `${server.url}/admin/invitation?token=`);

    // The invited person, in a browser of their own.
    await createAccount(server.registry, { email: 'second@acme.test' });
    const other = await browser.newContext();
    try {
      const theirs = await other.newPage();
      await signIn(theirs, 'second@acme.test');
      await theirs.goto(link);
      expect(theirs.url()).to.equal(`${server.url}/admin/invitation`);
      await theirs.getByRole('button', { name: 'Accept and become an admin' }).click();
      expect(await theirs.getByRole('status').textContent()).to.contain('You are now an admin of Acme');
    } finally {
      await other.close();
    }

    await page.getByRole('link', { name: 'Audit log' }).click();
    const log = await page.locator('#audit-log').textContent();
    for (const what of ['created the organization', 'added the domain', 'verified the domain', 'invited', 'accepted the invitation']) expect(log).to.contain(what);
  });

  it('renames the organization, then deletes it after its name is typed again', async () => {
    const account = await createAccount(server.registry, { email: 'owner@acme.test' });
    const page = await context.newPage();
    await signIn(page, account.email);
    await page.goto(`${server.url}/admin`);
    await page.getByLabel('Organization name').fill('Acme Trial');
    await page.getByRole('button', { name: 'Create organization' }).click();

    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByLabel('Organization name').fill('Acme');
    await page.getByRole('button', { name: 'Rename' }).click();
    expect(await page.getByRole('status').textContent()).to.contain('The organization is now called Acme.');
    expect(await page.title()).to.contain('Settings · Acme');

    await page.getByLabel('Type Acme to confirm').fill('Acme Trial');
    await page.getByRole('button', { name: 'Delete Acme' }).click();
    expect(await page.getByRole('alert').textContent()).to.contain('Type the name to confirm');
    await page.getByLabel('Type Acme to confirm').fill('Acme');
    await page.getByRole('button', { name: 'Delete Acme' }).click();
    await page.waitForURL(`${server.url}/admin`);
    expect(await page.getByRole('status').textContent()).to.contain('Acme was deleted.');
    expect(await page.locator('#organizations').count()).to.equal(0);
  });

  it('claims a domain’s accounts after the preview, searches as you type, deactivates with a confirmation and reactivates', async () => {
    const admin = await createAccount(server.registry, { email: 'owner@admins.test' });
    for (const [email, name] of [['ada@acme.test', 'Ada Lovelace'], ['alan@acme.test', 'Alan Turing'], ['grace@acme.test', 'Grace Hopper']]) {
      await server.registry.accounts.create({ email: email!, name, emailVerified: true });
    }
    const page = await context.newPage();
    const scriptErrors: string[] = [];
    page.on('pageerror', (err) => scriptErrors.push(err.message));
    page.on('console', (msg) => { if (msg.type() === 'error') scriptErrors.push(msg.text()); });
    await signIn(page, admin.email);

    await page.goto(`${server.url}/admin`);
    await page.getByLabel('Organization name').fill('Acme');
    await page.getByRole('button', { name: 'Create organization' }).click();
    await page.getByRole('link', { name: 'Domains' }).click();
    await page.getByLabel('Domain', { exact: true }).fill('acme.test');
    await page.getByRole('button', { name: 'Add domain' }).click();
    dns.txt.set('acme.test', [[await page.getByLabel('Value').inputValue()]]);
    await page.getByRole('button', { name: 'Verify now: acme.test' }).click();
    expect(await page.getByRole('status').textContent()).to.contain('Verified');

    // The preview says how many, which, and what happens; then one button claims them.
    await page.getByRole('link', { name: 'Review accounts to claim on acme.test' }).click();
    expect(await page.locator('#claim-count').textContent()).to.contain('3 accounts use an address on acme.test');
    expect(await page.locator('#claim-effects').textContent()).to.contain('can no longer change their email address or close their account themselves');
    expect(await page.locator('#claim-accounts tbody tr').count()).to.equal(3);
    await page.getByRole('button', { name: 'Claim 3 accounts' }).click();
    expect(await page.getByRole('status').first().textContent()).to.contain('3 accounts were claimed');
    expect(await page.getByRole('heading', { name: 'Managed accounts', level: 1 }).isVisible()).to.equal(true);

    // Search as you type: the list narrows without submitting the form (the URL follows).
    const listUrl = page.url();
    // (Waits by locator: the page's CSP refuses the evaluated strings of waitForFunction.)
    const onlyRow = async (email: string) => {
      await page.locator('#accounts tbody tr', { hasText: email }).waitFor();
      await page.locator('#accounts tbody tr').nth(1).waitFor({ state: 'detached' });
      expect(await page.locator('#accounts tbody tr').count()).to.equal(1);
    };
    await page.getByLabel('Search by address or name').pressSequentially('al', { delay: 40 });
    await onlyRow('alan@acme.test');
    expect(await page.locator('#accounts tbody').textContent()).to.contain('alan@acme.test');
    expect(page.url()).to.equal(`${listUrl}?q=al`);
    await page.getByLabel('Search by address or name').fill('');
    await page.getByLabel('Search by address or name').pressSequentially('grace h', { delay: 40 });
    await onlyRow('grace@acme.test');

    // Deactivate through its confirmation page, which says exactly what happens.
    await page.getByRole('link', { name: 'grace@acme.test' }).click();
    await page.getByRole('link', { name: 'Deactivate grace@acme.test' }).click();
    expect(await page.locator('#confirm-effects').textContent()).to.contain('Deactivating grace@acme.test signs them out of Jira, Confluence, Bitbucket, Trello');
    await page.getByRole('button', { name: 'Deactivate grace@acme.test' }).click();
    expect(await page.getByRole('status').first().textContent()).to.contain('grace@acme.test is deactivated');
    expect(await page.locator('#account-status').textContent()).to.equal('Deactivated');

    // The status filter updates the list at once, too.
    await page.getByRole('link', { name: 'Managed accounts' }).first().click();
    await page.getByLabel('Status').selectOption('deactivated');
    await onlyRow('grace@acme.test');
    expect(await page.locator('#accounts tbody').textContent()).to.contain('grace@acme.test');

    await page.getByRole('link', { name: 'grace@acme.test' }).click();
    await page.getByRole('button', { name: 'Reactivate grace@acme.test' }).click();
    expect(await page.getByRole('status').first().textContent()).to.contain('grace@acme.test is active again');
    expect(await page.locator('#account-status').textContent()).to.equal('Active');
    expect(scriptErrors, 'no script or CSP errors').to.deep.equal([]);
  });
});
