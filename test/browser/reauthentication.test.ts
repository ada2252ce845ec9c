import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { resetDatabase } from '../helpers/db.ts';
import { launchChromium } from '../helpers/browser.ts';
import { startUpstreamIdp } from '../helpers/upstream-idp.ts';
import type { Clock } from '../../src/shared/clock.ts';

/**
 * Privileged sessions in real Chromium (docs/flows/settings.md, decision 0027): a password-less
 * Google account whose login is no longer recent confirms a sensitive change through Google —
 * "Log in again" on the settings page, the login pages (prompt=login), "Continue with Google" —
 * and is never asked for a password it does not have.
 */
describe('browser: confirming a sensitive change through Google', function () {
  this.timeout(60_000);
  let browser: Browser;
  let server: TestServer;
  let upstream: Awaited<ReturnType<typeof startUpstreamIdp>>;
  let context: BrowserContext;
  let offset = 0;
  const clock: Clock = { now: () => Date.now() + offset };

  before(async () => { browser = await launchChromium(); });
  after(async () => browser?.close());
  beforeEach(async () => {
    await resetDatabase();
    offset = 0;
    upstream = await startUpstreamIdp({ host: 'localhost' });
    server = await startTestServer({ clock, overrides: { google: { issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret } } });
    upstream.configure(`${server.url}/login/google/callback`);
    context = await browser.newContext();
  });
  afterEach(async () => {
    await context.close();
    await server.close();
    await upstream.close();
  });

  async function continueWithGoogle(page: Page, landing: string) {
    await page.getByRole('link', { name: 'Continue with Google' }).click();
    await page.waitForURL(`${server.url}${landing}`);
  }

  it('a password-less Google account sets a password after confirming through Google', async () => {
    upstream.signInAs({ sub: 'g-ada', email: 'ada@gmail.com', email_verified: true, name: 'Ada Lovelace' });
    const page = await context.newPage();
    await page.goto(`${server.url}/account/password`);
    await continueWithGoogle(page, '/account/password');
    expect(await page.getByRole('heading', { name: 'Set a password' }).isVisible()).to.equal(true);
    expect(await page.getByLabel('Current password').count(), 'never asked for a password it does not have').to.equal(0);

    // Eleven minutes later the login is no longer recent.
    offset = 11 * 60_000;
    await page.reload();
    expect(await page.getByRole('heading', { name: 'Confirm it’s you' }).isVisible()).to.equal(true);
    expect(await page.getByLabel('Current password').count()).to.equal(0);
    await page.getByLabel('New password').fill('a password of my own');
    await page.getByRole('button', { name: 'Set password' }).click();
    expect(await page.getByRole('alert').textContent()).to.contain('Confirm it’s you');
    expect((await server.registry.accounts.findByEmail('ada@gmail.com'))?.password_hash).to.equal(null);

    // "Log in again" → the login pages → Google → back here, confirmed.
    offset = 0;
    await page.getByRole('link', { name: 'Log in again' }).click();
    await continueWithGoogle(page, '/account/password');
    expect(await page.getByRole('heading', { name: 'Confirm it’s you' }).count()).to.equal(0);
    await page.getByLabel('New password').fill('a password of my own');
    await page.getByRole('button', { name: 'Set password' }).click();
    expect(await page.getByRole('status').textContent()).to.contain('Your password was changed');
    expect((await server.registry.accounts.authenticate('ada@gmail.com', 'a password of my own')).ok).to.equal(true);
  });
});
