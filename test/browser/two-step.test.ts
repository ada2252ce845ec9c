import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { resetDatabase } from '../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../helpers/factories.ts';
import { launchChromium } from '../helpers/browser.ts';
import { startCallbackServer } from '../helpers/callback-server.ts';
import { totpAt } from '../helpers/two-step.ts';
import type { Clock } from '../../src/shared/clock.ts';

/**
 * Two-step verification in real Chromium: turning it on from settings (QR code, manual key,
 * recovery codes downloaded as a file), then logging in to a product with the app's code, with
 * a recovery code, and the required-enrolment step. The server's clock is ours, so codes of a
 * chosen 30-second step can be typed without waiting for the next one.
 */
describe('browser: two-step verification', function () {
  this.timeout(60_000);
  let browser: Browser;
  let server: TestServer;
  let callback: Awaited<ReturnType<typeof startCallbackServer>>;
  let context: BrowserContext;
  let now = 0;
  const clock: Clock = { now: () => now };

  before(async () => {
    browser = await launchChromium();
    callback = await startCallbackServer();
  });
  after(async () => {
    await browser?.close();
    await callback?.close();
  });
  beforeEach(async () => {
    await resetDatabase();
    now = Math.floor(Date.now() / 30_000) * 30_000 + 15_000;
    server = await startTestServer({ clock });
    context = await browser.newContext({ acceptDownloads: true });
  });
  afterEach(async () => {
    await context.close();
    await server.close();
  });

  async function logIn(page: Page, email: string) {
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
  }

  async function authorizationUrl(clientId: string) {
    const config = await oidc.discovery(new URL(server.url), clientId, undefined, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: callback.url, scope: 'openid', state: oidc.randomState(), code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    return url.href;
  }

  async function landOnCallback(page: Page): Promise<URL> {
    await page.waitForURL((u) => u.href.startsWith(callback.url));
    return new URL(page.url());
  }

  it('turns it on from settings, downloads the recovery codes, then asks for the app’s code at login', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true, name: 'Jira', redirectUris: [callback.url] });
    const page = await context.newPage();

    await page.goto(`${server.url}/account/security`);
    await logIn(page, account.email);
    await page.waitForURL(`${server.url}/account/security`);
    // Just logged in: a recent login confirms the change, no password is asked (privileged session).
    expect(await page.getByLabel('Password').count()).to.equal(0);
    await page.getByRole('button', { name: 'Turn on two-step verification' }).click();
    await page.getByRole('heading', { name: 'Turn on two-step verification' }).waitFor();
    const qr = page.getByRole('figure', { name: 'QR code for your authenticator app' }).locator('svg');
    expect(await qr.boundingBox()).to.include({ width: 192, height: 192 });
    const secret = (await page.locator('#manual-key').textContent())!.replace(/\s/g, '');

    await page.getByLabel('6-digit code').fill('000000');
    await page.getByRole('button', { name: 'Turn on' }).click();
    expect(await page.getByRole('alert').textContent()).to.contain('That code isn’t right');
    await page.getByLabel('6-digit code').fill(await totpAt(secret, now));
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.getByRole('heading', { name: 'Two-step verification is on' }).waitFor();
    const shown = await page.locator('#recovery-codes code').allTextContents();
    expect(shown).to.have.length(10);
    // A reload shows the same codes: their page is a GET, not the confirming code sent again.
    await page.reload();
    await page.getByRole('heading', { name: 'Two-step verification is on' }).waitFor();
    expect(await page.locator('#recovery-codes code').allTextContents()).to.deep.equal(shown);
    // Two columns of five, read down, their rows on one line.
    const first = (await page.locator('#recovery-codes li').nth(0).boundingBox())!;
    const sixth = (await page.locator('#recovery-codes li').nth(5).boundingBox())!;
    expect(sixth.y).to.equal(first.y);
    expect(sixth.x).to.be.greaterThan(first.x + first.width);

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download as a text file' }).click()]);
    expect(download.suggestedFilename()).to.equal('lanyard-recovery-codes.txt');
    const file = await readFile((await download.path())!, 'utf8');
    for (const code of shown) expect(file).to.contain(code);

    // A fresh browser logs in to Jira: password, then the code of the next step.
    now += 30_000;
    const other = await browser.newContext();
    try {
      const login = await other.newPage();
      await login.goto(await authorizationUrl(client.clientId));
      await logIn(login, account.email);
      await login.getByRole('heading', { name: 'Two-step verification' }).waitFor();
      await login.getByLabel('Code from your authenticator app').fill(await totpAt(secret, now));
      await login.getByRole('button', { name: 'Verify' }).click();
      expect((await landOnCallback(login)).searchParams.get('code')).to.be.a('string');

      // Another browser uses a recovery code instead.
      const third = await (await browser.newContext()).newPage();
      await third.goto(await authorizationUrl(client.clientId));
      await logIn(third, account.email);
      await third.getByLabel('Code from your authenticator app').fill(shown[0]!);
      await third.getByRole('button', { name: 'Verify' }).click();
      expect((await landOnCallback(third)).searchParams.get('code')).to.be.a('string');
      await third.context().close();
    } finally {
      await other.close();
    }

    await page.goto(`${server.url}/account/security`);
    expect(await page.locator('#two-step-status').textContent()).to.contain('9 unused recovery codes');
    expect(await page.locator('#security-events').textContent()).to.contain('Recovery code used');
  });

  it('has an account that requires it set it up during login, then continues to the product', async () => {
    const account = await createAccount(server.registry);
    await server.registry.twoStep.setRequired(account.id, true);
    const client = await createClient(server.registry, { firstParty: true, name: 'Confluence', redirectUris: [callback.url] });
    const page = await context.newPage();
    await page.goto(await authorizationUrl(client.clientId));
    await logIn(page, account.email);
    await page.getByRole('heading', { name: 'Set up two-step verification' }).waitFor();
    expect(await page.getByText('Your account needs a second step to continue to Confluence').isVisible()).to.equal(true);
    const secret = (await page.locator('#manual-key').textContent())!.replace(/\s/g, '');
    await page.getByLabel('6-digit code').fill(await totpAt(secret, now));
    await page.getByRole('button', { name: 'Turn on and continue' }).click();
    await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
    const shown = await page.locator('#recovery-codes code').allTextContents();
    expect(shown).to.have.length(10);
    // A reload shows the same codes (their page is a GET), not a form sent again.
    await page.reload();
    await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
    expect(await page.locator('#recovery-codes code').allTextContents()).to.deep.equal(shown);
    await page.getByRole('button', { name: /I saved them/ }).click();
    expect((await landOnCallback(page)).searchParams.get('code')).to.be.a('string');
  });
});
