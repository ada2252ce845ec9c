import { expect } from 'chai';
import supertest from 'supertest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom, PageDriver } from '../../helpers/login-driver.ts';
import { startSmtp, linkIn, type TestSmtp } from '../../helpers/smtp.ts';
import { startLogoutReceiver } from '../../helpers/receiver.ts';
import type { Clock } from '../../../src/shared/clock.ts';
import { startInteraction } from '../../helpers/authorization.ts';

const NEW_PASSWORD = 'a brand new passphrase';

describe('password reset (/password/forgot, /password/reset)', () => {
  let smtp: TestSmtp;
  let server: TestServer;
  let now = Date.now();
  const clock: Clock = { now: () => now };

  beforeEach(async () => {
    await resetDatabase();
    now = Date.now();
    smtp = await startSmtp();
    server = await startTestServer({ clock, overrides: { smtpUrl: smtp.url } });
  });
  afterEach(async () => {
    await server.close();
    await smtp.close();
  });

  /** Submits the "forgot password" form, then lets the background work and the mail go out. */
  async function requestReset(email: string) {
    const agent = supertest.agent(server.url);
    const form = await agent.get('/password/forgot');
    const posted = await agent.post('/password/forgot').type('form').send({ _csrf: csrfFrom(form.text), email });
    // Post/Redirect/Get: "Check your email" is a page of its own (a refusal answers at once).
    const res = posted.status === 303 && posted.headers.location === '/password/forgot/sent' ? await agent.get(posted.headers.location) : posted;
    await server.registry.background.idle();
    await server.registry.mail.delivery.deliverDue();
    return { agent, res };
  }

  async function choosePassword(agent: ReturnType<typeof supertest.agent>, link: string, password: string) {
    const page = await agent.get(new URL(link).pathname + new URL(link).search);
    if (page.status !== 200) return page;
    const token = new URL(link).searchParams.get('token')!;
    // A success answers 303 to the outcome's own page (Post/Redirect/Get): followed here.
    return agent.post('/password/reset').type('form').redirects(1).send({ _csrf: csrfFrom(page.text), token, password });
  }


  it('comes from the password page with the address already typed, and leads back to that login', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true });
    const agent = supertest.agent(server.url);
    const uid = await startInteraction(agent, client);
    const identify = await agent.get(`/interaction/${uid}`);
    const passwordPage = await agent.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(identify.text), email: account.email }).redirects(1);
    const link = /href="(\/password\/forgot\?[^"]+)"/.exec(passwordPage.text)![1]!.replace(/&amp;/g, '&');
    const forgot = await agent.get(link);
    expect(forgot.status).to.equal(200);
    expect(forgot.text).to.contain(`value="${account.email}"`);
    const backLink = `/interaction/${uid}?email=${encodeURIComponent(account.email)}`;
    expect(forgot.text).to.contain(`<a href="${backLink}">Back to log in</a>`);
    const posted = await agent.post('/password/forgot').type('form').send({ _csrf: csrfFrom(forgot.text), email: account.email, back: `/interaction/${uid}` });
    expect([posted.status, posted.headers.location]).to.deep.equal([303, '/password/forgot/sent']);
    const sent = await agent.get('/password/forgot/sent');
    expect(sent.status).to.equal(200);
    expect(sent.text).to.contain(`<a href="${backLink}">Back to log in</a>`);
    // Back at the login, the address typed is there to fix or to go on with.
    expect((await agent.get(backLink)).text).to.contain(`value="${account.email}"`);
    // A reload shows the same page and asks for no second link (which would void the first).
    await server.registry.background.idle();
    const links = async () => (await server.registry.db.query<{ n: number }>('SELECT count(*)::int AS n FROM password_reset_tokens')).rows[0]!.n;
    const before = await links();
    expect((await agent.get('/password/forgot/sent')).text).to.equal(sent.text);
    await server.registry.background.idle();
    expect(await links()).to.equal(before);
    // Only a login page of ours: anything else is dropped, never linked (no open redirect).
    for (const back of ['//evil.example/x', 'https://evil.example/', '/interaction/../admin', 'javascript:alert(1)']) {
      const page = await agent.get(`/password/forgot?back=${encodeURIComponent(back)}`);
      expect(page.status, back).to.equal(200);
      expect(page.text, back).not.to.contain('Back to log in');
    }
  });
  it('emails a single-use link that sets a new password for every product', async () => {
    const account = await createAccount(server.registry, { name: 'Ada' });
    const { agent, res } = await requestReset(account.email);
    expect(res.status).to.equal(200);
    expect(res.text).to.contain('Check your email');

    const mail = await smtp.lastTo(account.email);
    expect(mail.subject).to.equal('Reset your Lanyard password');
    const link = linkIn(mail, `${server.url}/password/reset?token=`);
    const done = await choosePassword(agent, link, NEW_PASSWORD);
    expect(done.status).to.equal(200);
    expect(done.text).to.contain('Your password was changed');
    // Every session ends with a reset, this browser's too: the page and the mail say so.
    expect(done.text).to.contain('logged out everywhere, this browser included');

    expect((await server.registry.accounts.authenticate(account.email, NEW_PASSWORD)).ok).to.equal(true);
    expect((await server.registry.accounts.authenticate(account.email, PASSWORD)).ok).to.equal(false);

    const again = await choosePassword(agent, link, 'yet another passphrase');
    expect(again.status, 'the link works once').to.equal(400);
    expect(again.text).to.contain('This link can’t be used');

    await server.registry.mail.delivery.deliverDue();
    const confirmation = await smtp.lastTo(account.email);
    expect(confirmation.subject).to.equal('Your Lanyard password was changed');
    expect(confirmation.text).to.contain('You have been signed out everywhere: log in again');
  });

  it('answers an unknown, deactivated or closed address exactly like a known one, and sends nothing', async () => {
    const known = await createAccount(server.registry, { email: 'known@example.com' });
    const deactivated = await createAccount(server.registry, { email: 'gone@example.com' });
    await server.registry.db.query("UPDATE accounts SET status = 'deactivated' WHERE id = $1", [deactivated.id]);
    const page = (html: string) => html.replace(/name="_csrf" value="[^"]+"/g, '').replace(/<strong>[^<]*<\/strong>/, '');
    const answers = [];
    for (const email of [known.email, 'nobody@example.com', deactivated.email]) answers.push((await requestReset(email)).res);
    expect(answers.map((r) => r.status)).to.deep.equal([200, 200, 200]);
    expect(page(answers[1]!.text)).to.equal(page(answers[0]!.text));
    expect(page(answers[2]!.text)).to.equal(page(answers[0]!.text));
    expect(smtp.messages.map((m) => (Array.isArray(m.to) ? m.to[0] : m.to)?.text)).to.deep.equal(['known@example.com']);
  });

  it('stores only a hash of the token', async () => {
    const account = await createAccount(server.registry);
    await requestReset(account.email);
    const token = new URL(linkIn(await smtp.lastTo(account.email), `${server.url}/password/reset?token=`)).searchParams.get('token')!;
    const { rows } = await (await testDatabase()).query<{ dump: string }>("SELECT string_agg(token_hash, ' ') AS dump FROM password_reset_tokens");
    expect(rows[0]!.dump).to.be.a('string').and.not.contain(token);
  });

  it('invalidates an earlier link when a new one is requested', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await requestReset(account.email);
    const first = linkIn(await smtp.lastTo(account.email), `${server.url}/password/reset?token=`);
    await requestReset(account.email);
    const second = linkIn(await smtp.lastTo(account.email), `${server.url}/password/reset?token=`);
    expect(second).not.to.equal(first);
    expect((await choosePassword(agent, first, NEW_PASSWORD)).status).to.equal(400);
    expect((await choosePassword(agent, second, NEW_PASSWORD)).status).to.equal(200);
  });

  it('refuses a link older than an hour', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await requestReset(account.email);
    const link = linkIn(await smtp.lastTo(account.email), `${server.url}/password/reset?token=`);
    now += 3600_000 + 1000;
    const res = await choosePassword(agent, link, NEW_PASSWORD);
    expect(res.status).to.equal(400);
    expect(res.text).to.contain('expired');
  });

  it('applies the password rules and says which one failed', async () => {
    const account = await createAccount(server.registry, { email: 'margaret.hamilton@example.com', name: 'Margaret Hamilton' });
    const { agent } = await requestReset(account.email);
    const link = linkIn(await smtp.lastTo(account.email), `${server.url}/password/reset?token=`);
    const cases: Array<[string, string]> = [
      ['short', 'Choose a longer password'],
      ['password123', 'That password is too common'],
      ['margaret.hamilton-2026', 'Don’t use your email address'],
      ['Margaret Hamilton', 'Don’t use your name'],
    ];
    for (const [password, message] of cases) {
      const res = await choosePassword(agent, link, password);
      expect(res.status, password).to.equal(400);
      expect(res.text, password).to.contain(message);
    }
    expect((await choosePassword(agent, link, 'a'.repeat(64) + ' long passphrase')).status, 'long passphrases are welcome').to.equal(200);
  });

  it('signs the account out everywhere: sessions end, refresh tokens die, clients get back-channel logout', async () => {
    const receiver = await startLogoutReceiver();
    try {
      const account = await createAccount(server.registry);
      const client = await createClient(server.registry, { firstParty: true, backchannelLogoutUri: `${receiver.url}/logout` });
      const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: client.redirectUri, scope: 'openid offline_access', prompt: 'consent', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      const browser = new PageDriver(server.url);
      const tokens = await oidc.authorizationCodeGrant(config, await browser.authorize(url.href, { email: account.email, password: PASSWORD }), { pkceCodeVerifier: verifier });
      expect(tokens.refresh_token).to.be.a('string');

      const { agent } = await requestReset(account.email);
      await choosePassword(agent, linkIn(await smtp.lastTo(account.email), `${server.url}/password/reset?token=`), NEW_PASSWORD);

      const refresh = await oidc.refreshTokenGrant(config, tokens.refresh_token!).catch((err: unknown) => err);
      expect((refresh as oidc.ResponseBodyError).error, 'offline refresh tokens are revoked too').to.equal('invalid_grant');
      expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).to.equal(false);
      expect(receiver.deliveries.map((d) => d.path)).to.deep.equal(['/logout']);
      const pages = browser.seen.length;
      await browser.authorize(url.href, { email: account.email, password: NEW_PASSWORD });
      expect(browser.seen.length, 'the old browser session had to log in again').to.be.greaterThan(pages);
    } finally {
      await receiver.close();
    }
  });

  it('refuses forms without CSRF and bad addresses with a clear message', async () => {
    const agent = supertest.agent(server.url);
    await agent.get('/password/forgot');
    expect((await agent.post('/password/forgot').type('form').send({ email: 'a@example.com' })).status).to.equal(403);
    const form = await agent.get('/password/forgot');
    const bad = await agent.post('/password/forgot').type('form').send({ _csrf: csrfFrom(form.text), email: 'nope' });
    expect(bad.status).to.equal(400);
    expect(bad.text).to.contain('Enter a valid email address');
  });
});
