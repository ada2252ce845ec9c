import { expect } from 'chai';
import supertest from 'supertest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom, PageDriver } from '../../helpers/login-driver.ts';
import { startSmtp, type TestSmtp } from '../../helpers/smtp.ts';
import { signInToAccount, submit, type Agent } from '../../helpers/account-pages.ts';


describe('account settings (/account)', () => {
  let smtp: TestSmtp;
  let server: TestServer;

  beforeEach(async () => {
    await resetDatabase();
    smtp = await startSmtp();
    server = await startTestServer({ overrides: { smtpUrl: smtp.url } });
  });
  afterEach(async () => {
    await server.close();
    await smtp.close();
  });

  const signIn = async (email: string, password = PASSWORD, userAgent?: string): Promise<Agent> =>
    (await signInToAccount(server.url, email, { password, ...(userAgent ? { userAgent } : {}) })).agent;
  const post = (agent: Agent, path: string, fields: Record<string, string> = {}) =>
    submit(agent, path.startsWith('/account/sessions') ? '/account/sessions' : path.startsWith('/account/apps') ? '/account/apps' : path, path, fields);

  it('sends a visitor without a session through the login pages and back to the account page', async () => {
    const account = await createAccount(server.registry, { name: 'Katherine Johnson' });
    const first = await supertest(server.url).get('/account');
    expect(first.status).to.equal(303);
    expect(first.headers.location).to.equal('/account/login?next=%2Faccount');
    const agent = await signIn(account.email);
    const page = await agent.get('/account');
    expect(page.text).to.contain('Katherine Johnson').and.contain(account.email);
  });

  it('returns after signing in only to its own settings and console pages, never elsewhere', async () => {
    /** Where the login started with `next` would return to (it rides in the state parameter). */
    const returnsTo = async (next: string) => {
      const res = await supertest(server.url).get(`/account/login?next=${encodeURIComponent(next)}`);
      const state = new URL(res.headers.location!, server.url).searchParams.get('state')!;
      return Buffer.from(state.split('.')[1]!, 'base64url').toString();
    };
    expect(await returnsTo('/account/security')).to.equal('/account/security');
    expect(await returnsTo('/admin/org_0123456789abcdef/domains')).to.equal('/admin/org_0123456789abcdef/domains');
    for (const elsewhere of ['//evil.example', '/\\evil.example', 'https://evil.example/account', '/account/../../evil', '/account?x=//evil', '/adminx', '/account//evil.example']) {
      expect(await returnsTo(elsewhere), elsewhere).to.equal('/account');
    }
  });

  it('keeps signing in to the account pages when another process (a CLI run with another ISSUER) opens the same database', async () => {
    const account = await createAccount(server.registry);
    const other = await startTestServer({ overrides: { issuer: 'http://127.0.0.1:9' } });
    try {
      const { status } = await signInToAccount(server.url, account.email);
      expect(status, 'the account pages still sign in through this server').to.equal(200);
    } finally {
      await other.close();
    }
  });

  it('takes a person who cancels the account pages’ sign-in back to the home page, not to an error', async () => {
    const agent = supertest.agent(server.url);
    let location = '/account';
    let page = await agent.get(location);
    for (let step = 0; step < 6 && (page.status === 302 || page.status === 303); step += 1) {
      location = page.headers.location!.replace(server.url, '');
      page = await agent.get(location);
    }
    const uid = /\/interaction\/([^/?]+)/.exec(location)![1]!;
    let res = await agent.post(`/interaction/${uid}/abort`).type('form').send({ _csrf: csrfFrom(page.text) });
    for (let step = 0; step < 6 && (res.status === 302 || res.status === 303); step += 1) {
      location = res.headers.location!.replace(server.url, '');
      if (location === '/') break;
      res = await agent.get(location);
    }
    expect(location).to.equal('/');
    // Someone else's state with the same error is still refused.
    expect((await supertest(server.url).get('/account/callback?error=access_denied&state=forged')).status).to.equal(400);
  });

  it('carries back to the page after signing in only a path of ours of sane length, so the redirect stays small', async () => {
    const send = (path: string) => supertest(server.url).get(path).redirects(0);
    expect((await send('/admin/organizations/org_abc/domains')).headers.location).to.equal('/account/login?next=%2Fadmin%2Forganizations%2Forg_abc%2Fdomains');
    // 12 KB of a 4-byte character: percent-encoded twice in a Location header it was 36 KB, more
    // than clients parse (found by the property suite with other seeds).
    const huge = await send(`/admin/organizations/${encodeURIComponent('𝔘'.repeat(1000))}/accounts`);
    expect(huge.status).to.equal(303);
    expect(huge.headers.location).to.equal('/account/login?next=%2Faccount');
    // Plain characters, but longer than any page of ours.
    const long = await send(`/admin/organizations/org_${'a'.repeat(600)}/domains`);
    expect(long.status).to.equal(303);
    expect(long.headers.location).to.equal('/account/login?next=%2Faccount');
  });

  it('refuses a forged sign-in callback', async () => {
    const res = await supertest(server.url).get('/account/callback?state=forged');
    expect(res.status).to.equal(400);
    expect(res.text).to.contain('We couldn’t sign you in');
  });

  it('changes the password with the current one, keeps this browser and signs out the others', async () => {
    const account = await createAccount(server.registry);
    const here = await signIn(account.email);
    const elsewhere = await signIn(account.email, PASSWORD, 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1');

    const wrong = await post(here, '/account/password', { current: 'not my password', password: 'a fresh passphrase' });
    expect(wrong.status).to.equal(400);
    expect(wrong.text).to.contain('Your current password is not right');
    const common = await post(here, '/account/password', { current: PASSWORD, password: 'password123' });
    expect(common.text).to.contain('That password is too common');

    const changed = await post(here, '/account/password', { current: PASSWORD, password: 'a fresh passphrase' });
    // Post/Redirect/Get: the page shows the outcome once, and a reload cannot send the form again.
    expect(changed.status).to.equal(303);
    expect(changed.headers.location).to.equal('/account/password');
    expect((await here.get('/account/password')).text).to.contain('Your password was changed');
    expect((await here.get('/account/password')).text, 'shown once').to.not.contain('Your password was changed');
    expect((await here.get('/account')).status, 'this browser stays signed in').to.equal(200);
    expect((await elsewhere.get('/account')).status, 'the other browser is signed out').to.equal(303);
    expect((await server.registry.accounts.authenticate(account.email, 'a fresh passphrase')).ok).to.equal(true);
    await server.registry.mail.delivery.deliverDue();
    const changedMail = await smtp.lastTo(account.email);
    expect(changedMail.subject).to.equal('Your Lanyard password was changed');
    expect(changedMail.text, 'this browser stayed signed in').to.contain('You have been signed out everywhere else.');
  });

  it('refuses the password in use as the “new” one after a recent login, signing nobody out and mailing nothing', async () => {
    const account = await createAccount(server.registry);
    const here = await signIn(account.email);
    const elsewhere = await signIn(account.email, PASSWORD, 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1');
    // The login is recent: the form asks for no current password.
    const same = await post(here, '/account/password', { password: PASSWORD });
    expect(same.status).to.equal(400);
    expect(same.text).to.contain('Choose a different password');
    expect((await elsewhere.get('/account')).status, 'the other browser stays signed in').to.equal(200);
    const { rows } = await server.registry.db.query("SELECT 1 FROM mail_outbox WHERE template = 'password-changed'");
    expect(rows).to.deep.equal([]);
    const changed = await post(here, '/account/password', { password: 'a fresh passphrase' });
    expect(changed.status).to.equal(303);
  });

  it('lists sessions with device, address and last use, and signs out one or all others', async () => {
    const account = await createAccount(server.registry);
    const laptop = await signIn(account.email);
    const phone = await signIn(account.email, PASSWORD, 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Version/18.0 Safari/604.1');
    const tablet = await signIn(account.email, PASSWORD, 'Mozilla/5.0 (Linux; Android 15) Firefox/140.0');

    const list = await laptop.get('/account/sessions');
    expect(list.text).to.contain('Chrome on Linux').and.contain('Safari on iOS').and.contain('Firefox on Android');
    expect(list.text).to.contain('This browser').and.contain('IP ');
    const others = [...list.text.matchAll(/action="\/account\/sessions\/([^/"]+)\/end"/g)].map((m) => m[1]!);
    expect(others).to.have.length(3);

    // End the phone's session only: find it by ending sessions until the phone is out.
    const phonePage = await phone.get('/account/sessions');
    const phoneUid = /<strong>Safari on iOS<\/strong> <span class="badge">This browser[\s\S]*?action="\/account\/sessions\/([^/"]+)\/end"/.exec(phonePage.text)![1]!;
    expect((await post(laptop, `/account/sessions/${phoneUid}/end`)).status).to.equal(303);
    expect((await laptop.get('/account/sessions')).text, 'the page says it was done').to.contain('That session was logged out.');
    expect((await phone.get('/account')).status).to.equal(303);
    expect((await tablet.get('/account')).status).to.equal(200);

    expect((await post(laptop, '/account/sessions/end-others')).status).to.equal(303);
    expect((await tablet.get('/account')).status).to.equal(303);
    const after = await laptop.get('/account/sessions');
    expect(after.text).to.contain('Every other session was logged out.');
    expect([...after.text.matchAll(/\/end"/g)]).to.have.length(1);

    // "Log out here": this browser's own session, and a page that says so.
    const here = /<span class="badge">This browser[\s\S]*?action="\/account\/sessions\/([^/"]+)\/end"/.exec(after.text)![1]!;
    const out = await post(laptop, `/account/sessions/${here}/end`);
    expect([out.status, out.headers.location]).to.deep.equal([303, '/session/end/success']);
    expect((await laptop.get('/session/end/success')).text).to.contain('You’re logged out');
    expect((await laptop.get('/account')).status).to.equal(303);
  });

  it('lists connected apps with their scopes and removes access, killing their tokens', async () => {
    const account = await createAccount(server.registry);
    const app = await createClient(server.registry, { name: 'Board Exporter', firstParty: false });
    const config = await oidc.discovery(new URL(server.url), app.clientId, app.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: app.redirectUri, scope: 'openid email', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const tokens = await oidc.authorizationCodeGrant(config, await new PageDriver(server.url).authorize(url.href, { email: account.email, password: PASSWORD }), { pkceCodeVerifier: verifier });

    const agent = await signIn(account.email);
    const apps = await agent.get('/account/apps');
    expect(apps.text).to.contain('Board Exporter').and.contain('Know who you are when you log in · See your email address');
    expect(apps.text).not.to.contain('Lanyard account settings');
    // The sessions list names the product as Connected apps does, not by its client id.
    expect((await agent.get('/account/sessions')).text).to.contain('used for Board Exporter').and.not.contain(`used for ${app.clientId}`);
    expect((await post(agent, `/account/apps/${app.clientId}/revoke`)).status).to.equal(303);
    const removed = await agent.get('/account/apps');
    expect(removed.text).to.contain('Board Exporter no longer has access to your account.');
    expect(removed.text).not.to.contain('<strong>Board Exporter</strong>');
    expect((await agent.get('/account/apps')).text).not.to.contain('Board Exporter');
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).to.equal(false);
  });

  it('requires a session and a CSRF token for every change', async () => {
    const account = await createAccount(server.registry);
    const agent = await signIn(account.email);
    expect((await agent.post('/account/sessions/end-others').type('form').send({})).status).to.equal(403);
    const anonymous = supertest.agent(server.url);
    const form = await anonymous.get('/password/forgot');
    const res = await anonymous.post('/account/password').type('form').send({ _csrf: csrfFrom(form.text), current: 'x', password: 'y' });
    expect(res.status).to.equal(401);
  });
});
