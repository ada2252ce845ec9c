import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { resetDatabase } from '../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../helpers/factories.ts';
import { launchChromium } from '../helpers/browser.ts';
import { startCallbackServer } from '../helpers/callback-server.ts';
import { startSmtp, type TestSmtp } from '../helpers/smtp.ts';

/** The real pages in real (headless, Debian) Chromium. */
describe('browser: login, consent, sign-up and settings pages', function () {
  this.timeout(60_000);
  let browser: Browser;
  let server: TestServer;
  let smtp: TestSmtp;
  let callback: Awaited<ReturnType<typeof startCallbackServer>>;
  let context: BrowserContext;

  before(async () => {
    browser = await launchChromium();
  });
  after(async () => browser?.close());

  beforeEach(async () => {
    await resetDatabase();
    smtp = await startSmtp();
    server = await startTestServer({ overrides: { smtpUrl: smtp.url } });
    callback = await startCallbackServer();
  });
  afterEach(async () => {
    await context?.close();
    await server.close();
    await callback.close();
    await smtp.close();
  });

  async function authorize(client: { clientId: string; clientSecret?: string | undefined }, scope = 'openid email') {
    const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: callback.url, scope, state: 'st', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    return { config, verifier, url: url.href };
  }

  async function exchange(page: Page, flow: Awaited<ReturnType<typeof authorize>>) {
    await page.waitForURL((u) => u.href.startsWith(callback.url));
    expect(await page.getByRole('heading', { name: 'Back at the app' }).isVisible()).to.equal(true);
    return oidc.authorizationCodeGrant(flow.config, new URL(page.url()), { pkceCodeVerifier: flow.verifier, expectedState: 'st' });
  }

  async function logIn(page: Page, email: string, password: string) {
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
  }

  it('logs in to a first-party product through the identifier-first pages', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true, name: 'Jira', redirectUris: [callback.url] });
    const flow = await authorize(client);
    context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(flow.url);
    expect(await page.getByRole('heading', { name: 'Log in to continue' }).isVisible()).to.equal(true);
    expect(await page.getByText('Jira').first().isVisible()).to.equal(true);
    await logIn(page, account.email, PASSWORD);
    const tokens = await exchange(page, flow);
    expect(tokens.claims()?.sub).to.equal(account.id);
  });

  it('shows a wrong password as an error on the password page, then accepts the right one', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true, redirectUris: [callback.url] });
    const flow = await authorize(client);
    context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(flow.url);
    await logIn(page, account.email, 'wrong password');
    expect(await page.getByRole('alert').textContent()).to.contain('Check your email and password');
    expect(await page.getByLabel('Password').getAttribute('aria-invalid')).to.equal('true');
    await page.screenshot({ path: '/tmp/lanyard-password.png', fullPage: true });
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    expect((await exchange(page, flow)).claims()?.sub).to.equal(account.id);
  });

  it('asks for consent for a third-party app: Allow continues, Cancel returns access_denied', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: false, name: 'Board Exporter', redirectUris: [callback.url] });
    context = await browser.newContext();
    const page = await context.newPage();

    const denied = await authorize(client);
    await page.goto(denied.url);
    await logIn(page, account.email, PASSWORD);
    expect(await page.getByRole('heading', { name: 'Board Exporter wants to access your account' }).isVisible()).to.equal(true);
    expect(await page.getByText('See your email address').isVisible()).to.equal(true);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForURL((u) => u.href.startsWith(callback.url));
    expect(new URL(page.url()).searchParams.get('error')).to.equal('access_denied');

    const allowed = await authorize(client);
    await page.goto(allowed.url);
    await page.getByRole('heading', { name: 'Board Exporter wants to access your account' }).waitFor();
    await page.screenshot({ path: '/tmp/lanyard-consent.png', fullPage: true });
    await page.getByRole('button', { name: 'Allow' }).click();
    expect((await exchange(page, allowed)).claims()?.sub).to.equal(account.id);
  });

  it('works without JavaScript', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true, redirectUris: [callback.url] });
    const flow = await authorize(client);
    context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(flow.url);
    await logIn(page, account.email, PASSWORD);
    expect((await exchange(page, flow)).claims()?.sub).to.equal(account.id);
  });

  it('creates an account with the emailed code and lands back at the product', async () => {
    const client = await createClient(server.registry, { firstParty: true, name: 'Trello', redirectUris: [callback.url] });
    const flow = await authorize(client, 'openid email profile');
    context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(flow.url);
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByLabel('Email').fill('browser.user@example.com');
    await page.getByRole('button', { name: 'Send verification code' }).click();
    await page.getByLabel('Verification code').waitFor();
    await server.registry.background.idle();
    await server.registry.mail.delivery.deliverDue();
    const code = /^\s+(\d{6})\s*$/m.exec((await smtp.lastTo('browser.user@example.com')).text ?? '')![1]!;
    await page.getByLabel('Verification code').fill(code);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByLabel('Full name').fill('Browser User');
    await page.getByLabel('Password').fill('a browser-made passphrase');
    await page.getByRole('button', { name: 'Create account and continue' }).click();
    const tokens = await exchange(page, flow);
    const account = await server.registry.accounts.findByEmail('browser.user@example.com');
    expect(tokens.claims()?.sub).to.equal(account?.id);
  });

  it('changes the password in account settings', async () => {
    const account = await createAccount(server.registry);
    context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/account`);
    await logIn(page, account.email, PASSWORD);
    await page.getByRole('heading', { name: account.name ?? account.email }).waitFor();
    await page.getByRole('link', { name: 'Password', exact: true }).click();
    // Just logged in: a recent login confirms the change, the current password is not asked.
    expect(await page.getByLabel('Current password').count()).to.equal(0);
    await page.getByLabel('New password').fill('changed in the browser');
    await page.getByRole('button', { name: 'Change password' }).click();
    expect(await page.getByRole('status').textContent()).to.contain('Your password was changed');
    expect((await server.registry.accounts.authenticate(account.email, 'changed in the browser')).ok).to.equal(true);
  });
});
