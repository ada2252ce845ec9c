import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { resetDatabase } from '../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../helpers/factories.ts';
import { launchChromium } from '../helpers/browser.ts';
import { startCallbackServer } from '../helpers/callback-server.ts';
import { ONE_SLOW_HASH, submitWhileHashingFull } from '../helpers/busy.ts';
import { importLegacy, legacyMember, TRELLO_PASSWORD } from '../helpers/trello.ts';

/** The interactive Trello migration paths in real Chromium. */
describe('browser: moving a Trello account', function () {
  this.timeout(60_000);
  let browser: Browser;
  let server: TestServer;
  let callback: Awaited<ReturnType<typeof startCallbackServer>>;
  let context: BrowserContext;

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
    server = await startTestServer();
    context = await browser.newContext();
  });
  afterEach(async () => {
    await context.close();
    await server.close();
  });

  async function openTrelloLogin(page: Page) {
    const client = await createClient(server.registry, { clientId: 'trello', firstParty: true, name: 'Trello', redirectUris: [callback.url] });
    const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    await page.goto(oidc.buildAuthorizationUrl(config, { redirect_uri: callback.url, scope: 'openid', state: oidc.randomState(), code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }).href);
    return { config, verifier };
  }

  async function logIn(page: Page, email: string, password: string) {
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
  }

  it('logs in with the Trello password, reviews the address, picks another one and lands in Trello with the member id', async () => {
    const member = legacyMember({
      username: 'grace',
      emails: [
        { address: 'grace@acme.example', verified: true, primary: true, lastUsedAt: '2022-01-01T00:00:00Z' },
        { address: 'grace@gmail.com', verified: true, lastUsedAt: '2025-08-01T00:00:00Z' },
      ],
    });
    await importLegacy(server.registry, [member]);
    const page = await context.newPage();
    const flow = await openTrelloLogin(page);
    await logIn(page, 'grace@gmail.com', TRELLO_PASSWORD);

    await page.getByRole('heading', { name: 'Update your Trello account' }).waitFor();
    expect(await page.getByRole('radio', { name: 'grace@acme.example' }).isChecked()).to.equal(true);
    expect(await page.getByRole('status').textContent()).to.contain('not the address you used last');
    await page.getByRole('radio', { name: 'grace@gmail.com' }).check();
    await page.getByRole('button', { name: /Update account and continue to Trello/ }).click();

    await page.waitForURL((u) => u.href.startsWith(callback.url));
    const tokens = await oidc.authorizationCodeGrant(flow.config, new URL(page.url()), { pkceCodeVerifier: flow.verifier, expectedState: oidc.skipStateCheck });
    expect(tokens.claims()?.trello_member_id).to.equal(member.id);
    expect((await server.registry.accounts.findByEmail('grace@gmail.com'))?.id).to.equal(tokens.claims()?.sub);

    // The retired address is answered like an unknown one in another browser (it cannot be used
    // to test addresses); the account's addresses are told by mail which one to use.
    const other = await browser.newContext();
    try {
      const again = await other.newPage();
      await again.goto(`${server.url}/account`);
      await logIn(again, 'grace@acme.example', TRELLO_PASSWORD);
      expect(await again.getByRole('alert').textContent()).to.contain('Check your email and password');
    } finally {
      await other.close();
    }
  });

  it('links a member whose address has an account: the account’s password, then the Trello password, then Trello gets the member id', async () => {
    const account = await createAccount(server.registry, { email: 'ada@example.com' });
    const member = legacyMember({ username: 'ada', emails: [{ address: 'ada@example.com', verified: true, primary: true }] });
    await importLegacy(server.registry, [member]);
    const page = await context.newPage();
    const flow = await openTrelloLogin(page);
    await logIn(page, 'ada@example.com', PASSWORD);

    await page.getByRole('heading', { name: 'Link your Trello account' }).waitFor();
    await page.getByLabel('Trello password').fill('not it');
    await page.getByRole('button', { name: /Link and continue to Trello/ }).click();
    await page.getByText('Check your Trello details').waitFor();
    await page.getByLabel('Trello password').fill(TRELLO_PASSWORD);
    await page.getByRole('button', { name: /Link and continue to Trello/ }).click();

    await page.waitForURL((u) => u.href.startsWith(callback.url));
    const tokens = await oidc.authorizationCodeGrant(flow.config, new URL(page.url()), { pkceCodeVerifier: flow.verifier, expectedState: oidc.skipStateCheck });
    expect(tokens.claims()?.sub).to.equal(account.id);
    expect(tokens.claims()?.trello_member_id).to.equal(member.id);
  });

  it('links a member whose address has an account: the Trello password there, then the account’s password', async () => {
    const account = await createAccount(server.registry, { email: 'alan@example.com' });
    const member = legacyMember({ username: 'alan', emails: [{ address: 'alan@example.com', verified: true, primary: true }] });
    await importLegacy(server.registry, [member]);
    const page = await context.newPage();
    const flow = await openTrelloLogin(page);
    await logIn(page, 'alan@example.com', TRELLO_PASSWORD);

    await page.getByRole('heading', { name: 'This address already has an account' }).waitFor();
    expect(await page.getByText('Your Trello password is right').isVisible()).to.equal(true);
    await page.getByLabel('Password of the account').fill(PASSWORD);
    await page.getByRole('button', { name: /Link and continue to Trello/ }).click();

    await page.waitForURL((u) => u.href.startsWith(callback.url));
    const tokens = await oidc.authorizationCodeGrant(flow.config, new URL(page.url()), { pkceCodeVerifier: flow.verifier, expectedState: oidc.skipStateCheck });
    expect(tokens.claims()?.sub).to.equal(account.id);
    expect(tokens.claims()?.trello_member_id).to.equal(member.id);
  });

  it('links a Trello account from settings after reviewing what will happen', async () => {
    const account = await createAccount(server.registry, { email: 'linus@example.com' });
    const member = legacyMember({ username: 'linus', emails: [{ address: 'linus@old.example', verified: true, primary: true }] });
    await importLegacy(server.registry, [member]);
    const page = await context.newPage();
    await page.goto(`${server.url}/account/trello`);
    await logIn(page, account.email, PASSWORD);
    await page.waitForURL(`${server.url}/account/trello`);
    await page.getByLabel('Trello username or email').fill('linus');
    await page.getByLabel('Trello password').fill(TRELLO_PASSWORD);
    await page.getByRole('button', { name: 'Review' }).click();
    await page.getByRole('heading', { name: 'Link your Trello account' }).waitFor();
    expect(await page.getByText('linus@old.example').isVisible()).to.equal(true);
    await page.getByRole('button', { name: 'Link Trello account' }).click();
    expect(await page.getByRole('status').textContent()).to.contain('Your Trello account is linked');
    expect(await page.locator('#trello-status').textContent()).to.contain('Linked to the Trello account linus');
  });

  it('keeps the Settings → Trello form when the hashing is full, and the same form goes on to the review once there is room (decision 0063)', async () => {
    // A server of its own whose hashing admits one hash at a time, a slow one (about a second):
    // while the test's own hash runs, the queue is full.
    const busyServer = await startTestServer({ overrides: ONE_SLOW_HASH });
    try {
      const account = await createAccount(busyServer.registry, { email: 'ada@example.com' });
      await importLegacy(busyServer.registry, [legacyMember({ username: 'ada', emails: [{ address: 'ada@old.example', verified: true, primary: true }] })]);
      const page = await context.newPage();
      await page.goto(`${busyServer.url}/account/trello`);
      await logIn(page, account.email, PASSWORD);
      await page.waitForURL(`${busyServer.url}/account/trello`);

      await page.getByLabel('Trello username or email').fill('ada');
      await page.getByLabel('Trello password').fill(TRELLO_PASSWORD);
      await submitWhileHashingFull(busyServer.registry, page, '/account/trello', () => page.getByRole('button', { name: 'Review' }).click());
      expect(await page.getByLabel('Trello username or email').inputValue(), 'the login is kept').to.equal('ada');
      expect(await page.getByLabel('Trello password').inputValue(), 'the password is not echoed back').to.equal('');

      await page.getByLabel('Trello password').fill(TRELLO_PASSWORD);
      await page.getByRole('button', { name: 'Review' }).click();
      await page.getByRole('heading', { name: 'Link your Trello account' }).waitFor();
      expect(await page.getByText('ada@old.example').isVisible()).to.equal(true);
    } finally {
      await busyServer.close();
    }
  });
});
