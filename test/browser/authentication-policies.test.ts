import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { resetDatabase } from '../helpers/db.ts';
import { createAccount, PASSWORD } from '../helpers/factories.ts';
import { launchChromium } from '../helpers/browser.ts';

/**
 * The authentication policies pages in real Chromium: a refused setting with its message, a
 * policy created (the default), a second one, accounts moved to it from the managed-accounts
 * list, and "sign everyone out" confirmed — after which the member's own browser is asked to log
 * in again.
 */
describe('browser: authentication policies', function () {
  this.timeout(60_000);
  let browser: Browser;
  let server: TestServer;
  let context: BrowserContext;

  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });
  beforeEach(async () => {
    await resetDatabase();
    server = await startTestServer();
    context = await browser.newContext();
  });
  afterEach(async () => {
    await context.close();
    await server.close();
  });

  async function signIn(page: Page, email: string) {
    await page.goto(`${server.url}/account`);
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${server.url}/account`);
  }

  it('creates, validates and assigns policies, and signs everyone out under one', async () => {
    const { db, organizations } = server.registry;
    const admin = await createAccount(server.registry, { email: 'owner@admins.test' });
    const created = await organizations.service.create(admin.id, 'Acme');
    if (!created.ok) throw new Error(created.problem);
    const org = created.organization;
    await db.query(
      `INSERT INTO organization_domains (id, organization_id, domain, verification_token, state, method, added_at, added_by, verified_at)
       VALUES ('dom_browser', $1, 'acme.test', 'token', 'verified', 'dns', now(), $2, now())`, [org.id, admin.id]);
    const ann = await createAccount(server.registry, { email: 'ann@acme.test' });
    await createAccount(server.registry, { email: 'bo@acme.test' });

    // The member is signed in in their own browser.
    const memberContext = await browser.newContext();
    const memberPage = await memberContext.newPage();
    await signIn(memberPage, ann.email);

    const page = await context.newPage();
    await signIn(page, admin.email);
    await page.goto(`${server.url}/admin/organizations/${org.id}`);
    await page.getByRole('link', { name: 'Policies' }).click();
    expect(await page.locator('#sso-transition').textContent()).to.contain('Their old password stops working');

    await page.getByRole('link', { name: 'New policy' }).click();
    await page.getByLabel('Name').fill('Staff');
    await page.getByLabel('Minimum password length (characters)').fill('6');
    await page.getByRole('button', { name: 'Create policy' }).click();
    expect(await page.getByRole('alert').textContent()).to.contain('Check the minimum password length');
    // The field in question is focused, with the value typed kept.
    expect(await page.evaluate('document.activeElement && document.activeElement.id')).to.equal('policy-min-length');
    await page.getByLabel('Minimum password length (characters)').fill('14');
    await page.getByRole('button', { name: 'Create policy' }).click();
    expect(await page.getByRole('status').textContent()).to.contain('it is the default');

    await page.getByRole('link', { name: 'Authentication policies' }).click();
    await page.getByRole('link', { name: 'New policy' }).click();
    await page.getByLabel('Name').fill('Contractors');
    await page.getByLabel('Required').check();
    await page.getByLabel('Idle timeout (minutes)').fill('30');
    await page.getByRole('button', { name: 'Create policy' }).click();
    expect(await page.getByRole('heading', { level: 1 }).textContent()).to.contain('Contractors');

    // Both accounts, from the managed-accounts list.
    await page.getByRole('link', { name: 'Accounts' }).click();
    await page.getByLabel('Select ann@acme.test').check();
    await page.getByLabel('Select bo@acme.test').check();
    await page.getByRole('button', { name: 'Change policy' }).click();
    expect(await page.getByRole('heading', { level: 1 }).textContent()).to.contain('Change authentication policy');
    expect(await page.locator('#assign-accounts').textContent()).to.contain('bo@acme.test');
    await page.getByRole('radio', { name: /Contractors/ }).check();
    await page.getByRole('button', { name: 'Change policy' }).click();
    expect(await page.getByRole('status').textContent()).to.contain('2 accounts now follow Contractors');
    expect(await page.locator('#policies').textContent()).to.contain('2 accounts assigned');

    // Sign everyone out under Contractors, confirmed on its own page.
    await page.getByRole('link', { name: 'Contractors' }).click();
    await page.getByRole('link', { name: 'Sign everyone out under Contractors' }).click();
    expect(await page.locator('#confirm-effects').textContent()).to.contain('2 people who follow Contractors now are signed out');
    await page.getByRole('button', { name: 'Sign everyone out' }).click();
    expect(await page.getByRole('status').textContent()).to.contain('Signed out 2 accounts everywhere');

    // The member's browser is asked to log in again; the admin's is not.
    await memberPage.goto(`${server.url}/account`);
    expect(memberPage.url()).not.to.equal(`${server.url}/account`);
    expect(await memberPage.getByLabel('Email').isVisible()).to.equal(true);
    await page.goto(`${server.url}/admin/organizations/${org.id}/audit`);
    expect(await page.locator('body').textContent()).to.contain('signed out everyone under the policy');
    await memberContext.close();
  });
});
