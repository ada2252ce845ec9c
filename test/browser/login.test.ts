import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { resetDatabase } from '../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../helpers/factories.ts';
import { launchChromium } from '../helpers/browser.ts';
import { startCallbackServer } from '../helpers/callback-server.ts';
import { ONE_SLOW_HASH, submitWhileHashingFull } from '../helpers/busy.ts';

/**
 * The login and consent pages in real headless Chromium (Debian's, never a downloaded one),
 * driven the way a person would: by label and button name. The relying party is openid-client
 * with PKCE, state and nonce; its redirect URI is a small page on 127.0.0.1 that the browser
 * really lands on, and the code it gets there is exchanged for tokens.
 */
describe('browser: logging in and consenting in Chromium', function () {
  this.timeout(60_000);
  let browser: Browser;
  let server: TestServer;
  let callback: Awaited<ReturnType<typeof startCallbackServer>>;
  let context: BrowserContext | undefined;

  before(async () => {
    browser = await launchChromium(); // throws with a clear message when /usr/bin/chromium is missing
    await resetDatabase();
    server = await startTestServer();
    callback = await startCallbackServer();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await callback?.close();
  });
  afterEach(async () => {
    await context?.close();
    context = undefined;
  });

  async function newPage(options: { javaScriptEnabled?: boolean } = {}): Promise<Page> {
    context = await browser.newContext({ javaScriptEnabled: options.javaScriptEnabled ?? true });
    return context.newPage();
  }

  /** An openid-client relying party for `client`, and a fresh authorization request (PKCE + state + nonce). */
  async function startAuthorization(client: { clientId: string; clientSecret?: string | undefined }, scope = 'openid email') {
    const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: callback.url,
      scope,
      state,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    return { config, verifier, state, nonce, url: url.href };
  }
  type Authorization = Awaited<ReturnType<typeof startAuthorization>>;

  /** Waits until the browser shows the relying party's callback page and returns its URL. */
  async function landOnCallback(page: Page): Promise<URL> {
    await page.waitForURL((u) => u.href.startsWith(callback.url));
    await page.getByRole('heading', { name: 'Back at the app' }).waitFor();
    return new URL(page.url());
  }

  /** The relying party's half: validate the callback URL and exchange its code. */
  async function exchange(flow: Authorization, callbackUrl: URL) {
    return oidc.authorizationCodeGrant(flow.config, callbackUrl, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce });
  }

  async function enterEmail(page: Page, email: string) {
    await page.getByRole('heading', { name: 'Log in to continue' }).waitFor();
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Enter your password' }).waitFor();
  }

  async function enterPassword(page: Page, password: string) {
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
  }

  /** Main-frame URLs the browser committed to (redirect hops never commit), as paths on the server. */
  function recordNavigations(page: Page): string[] {
    const seen: string[] = [];
    page.on('framenavigated', (frame) => {
      if (frame !== page.mainFrame()) return;
      const url = frame.url();
      seen.push(url.startsWith(server.url) ? new URL(url).pathname.replace(/\/interaction\/[^/]+/, '/interaction/:uid') : url.startsWith(callback.url) ? 'callback' : url);
    });
    return seen;
  }

  it('logs a user in to a first-party client through the email page and the password page, with no consent page, and the code yields an ID token for that account', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true, name: 'Jira', redirectUris: [callback.url] });
    const flow = await startAuthorization(client);
    const page = await newPage();
    const seen = recordNavigations(page);

    await page.goto(flow.url);
    await enterEmail(page, account.email);
    expect(await page.getByText('to continue to Jira').isVisible(), 'the password page names the client').to.equal(true);
    expect(await page.getByLabel('Email').inputValue(), 'the password page carries the email').to.equal(account.email);
    await enterPassword(page, PASSWORD);

    const landed = await landOnCallback(page);
    expect(landed.searchParams.get('code')).to.be.a('string').and.not.equal('');
    expect(landed.searchParams.get('state')).to.equal(flow.state);
    // The password page is a GET of its own (Post/Redirect/Get) …
    expect(seen).to.deep.equal(['/interaction/:uid', '/interaction/:uid/password', 'callback']);
    // … so Back from the application fetches a page (this login is over) instead of asking to
    // send the form again.
    await page.goBack();
    await page.getByRole('heading', { name: 'You’re done here' }).waitFor();
    expect(new URL(page.url()).pathname).to.match(/^\/interaction\/[^/]+\/password$/);

    const tokens = await exchange(flow, landed);
    const claims = tokens.claims()!;
    expect(claims.sub).to.equal(account.id);
    expect(claims.aud).to.equal(client.clientId);
    expect(claims.iss).to.equal(server.url);
  });

  it('shows a wrong password as "Check your email and password" on the password page, marks the field invalid, and then accepts the right password', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true, redirectUris: [callback.url] });
    const flow = await startAuthorization(client);
    const page = await newPage();

    await page.goto(flow.url);
    await enterEmail(page, account.email);
    await enterPassword(page, 'not the password');

    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).to.contain('Check your email and password');
    expect(await page.getByRole('heading', { level: 1 }).textContent(), 'still on the password page').to.equal('Enter your password');
    const password = page.getByLabel('Password');
    expect(await password.getAttribute('aria-invalid')).to.equal('true');
    expect(await password.getAttribute('aria-describedby'), 'the field points at the alert').to.equal(await alert.getAttribute('id'));
    expect(await password.inputValue(), 'the wrong password is not echoed back').to.equal('');
    expect(await page.getByLabel('Email').inputValue()).to.equal(account.email);
    await page.screenshot({ path: '/tmp/lanyard-login-password.png', fullPage: true });

    await enterPassword(page, PASSWORD);
    const tokens = await exchange(flow, await landOnCallback(page));
    expect(tokens.claims()?.sub).to.equal(account.id);
  });

  it('shows a third-party client’s consent page listing what it will get, and Allow lands on the callback with a code for that account', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: false, name: 'Board Exporter', redirectUris: [callback.url] });
    const flow = await startAuthorization(client, 'openid email');
    const page = await newPage();

    await page.goto(flow.url);
    await enterEmail(page, account.email);
    await enterPassword(page, PASSWORD);

    await page.getByRole('heading', { name: 'Board Exporter wants to access your account' }).waitFor();
    expect(await page.getByText(`Signed in as ${account.email}`).isVisible()).to.equal(true);
    const scopes = page.locator('#released > li');
    expect(await scopes.count()).to.equal(2);
    expect(await scopes.nth(0).textContent()).to.contain('Know who you are when you log in');
    expect(await scopes.nth(1).textContent()).to.contain('See your email address');
    expect((await page.locator('#released .details li').allTextContents()).map((s) => s.trim())).to.deep.equal([
      'An identifier for your account',
      'How you logged in (password, code from your app …)',
      `Email address: ${account.email}`,
      'Whether your email address is verified: verified',
    ]);
    await page.screenshot({ path: '/tmp/lanyard-login-consent.png', fullPage: true });

    await page.getByRole('button', { name: 'Allow' }).click();
    const landed = await landOnCallback(page);
    expect(landed.searchParams.get('code')).to.be.a('string').and.not.equal('');
    const tokens = await exchange(flow, landed);
    expect(tokens.claims()?.sub).to.equal(account.id);
    expect(tokens.claims()?.aud).to.equal(client.clientId);
    expect(tokens.claims()?.email, 'the address the page listed').to.equal(account.email);
  });

  it('sends a user who clicks Cancel on the consent page back to the callback with error=access_denied and no code', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: false, name: 'Board Exporter', redirectUris: [callback.url] });
    const flow = await startAuthorization(client, 'openid email');
    const page = await newPage();

    await page.goto(flow.url);
    await enterEmail(page, account.email);
    await enterPassword(page, PASSWORD);
    await page.getByRole('heading', { name: 'Board Exporter wants to access your account' }).waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();

    const landed = await landOnCallback(page);
    expect(landed.searchParams.get('error')).to.equal('access_denied');
    expect(landed.searchParams.get('state')).to.equal(flow.state);
    expect(landed.searchParams.has('code')).to.equal(false);
    // The relying party's library sees it as the spec's error response, not as a code to exchange.
    const refused = await exchange(flow, landed).catch((err: unknown) => err);
    expect(refused).to.be.instanceOf(oidc.AuthorizationResponseError);
    expect((refused as oidc.AuthorizationResponseError).error).to.equal('access_denied');
  });

  it('lets a user log in with JavaScript disabled, since the forms are plain HTML posts', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true, redirectUris: [callback.url] });
    const flow = await startAuthorization(client);
    const page = await newPage({ javaScriptEnabled: false });

    await page.goto(flow.url);
    expect(await page.locator('script').count(), 'the login page has no script').to.equal(0);
    await enterEmail(page, account.email);
    await enterPassword(page, PASSWORD);

    const tokens = await exchange(flow, await landOnCallback(page));
    expect(tokens.claims()?.sub).to.equal(account.id);
  });

  it('shows "We’re busy right now" above the password form while the hashing is full, and the same form logs in once there is room', async () => {
    // A server of its own whose hashing admits one hash at a time, a slow one (about a second):
    // while the test's own hash runs, the queue is full.
    const busyServer = await startTestServer({ overrides: ONE_SLOW_HASH });
    try {
      const account = await createAccount(busyServer.registry);
      const client = await createClient(busyServer.registry, { firstParty: true, redirectUris: [callback.url] });
      const config = await oidc.discovery(new URL(busyServer.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: callback.url, scope: 'openid', state, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      const page = await newPage();
      await page.goto(url.href);
      await enterEmail(page, account.email);

      await submitWhileHashingFull(busyServer.registry, page, '/password', () => enterPassword(page, PASSWORD));
      expect(await page.getByRole('heading', { level: 1 }).textContent(), 'still on the password page').to.equal('Enter your password');
      expect(await page.getByLabel('Email').inputValue(), 'the address is kept').to.equal(account.email);
      expect(await page.getByLabel('Password').inputValue(), 'the password is not echoed back').to.equal('');

      // The hash is done: trying again from the same page logs in.
      await enterPassword(page, PASSWORD);
      const landed = await landOnCallback(page);
      const tokens = await oidc.authorizationCodeGrant(config, landed, { pkceCodeVerifier: verifier, expectedState: state });
      expect(tokens.claims()?.sub).to.equal(account.id);
    } finally {
      await busyServer.close();
    }
  });
});
