import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { authorizationPath, startInteraction } from '../../helpers/authorization.ts';

describe('identifier-first login pages (/interaction/:uid)', () => {
  let server: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;

  before(async () => {
    await resetDatabase();
    server = await startTestServer();
    client = await createClient(server.registry, { firstParty: true, name: 'Confluence' });
  });
  after(async () => server.close());

  async function openLogin() {
    const agent = supertest.agent(server.url);
    const uid = await startInteraction(agent, client);
    const page = await agent.get(`/interaction/${uid}`);
    return { agent, uid, page, csrf: csrfFrom(page.text) };
  }

  it('renders the email step with the client’s name, a CSRF token and no caching', async () => {
    const { page } = await openLogin();
    expect(page.status).to.equal(200);
    expect(page.headers['content-type']).to.match(/text\/html/);
    expect(page.headers['cache-control']).to.equal('no-store');
    expect(page.headers['content-security-policy']).to.contain("default-src 'none'");
    expect(page.text).to.contain('Confluence');
    expect(page.text).to.match(/<label for="email">Email<\/label>/);
    expect(page.text).not.to.contain('name="password"');
  });

  it('answers the email step identically for a registered and an unknown address', async () => {
    const account = await createAccount(server.registry);
    const strip = (html: string) => html.replace(/name="_csrf" value="[^"]+"/g, '').replace(/\/interaction\/[^/"]+/g, '').replace(/value="[^"]*@[^"]*"/g, '')
    // The address typed and this login's page, carried to "Forgot your password?" (the same differences as above).
    .replace(/\/password\/forgot\?[^"]*/g, '/password/forgot?');
    const known = await openLogin();
    const a = await known.agent.post(`/interaction/${known.uid}/identify`).type('form').send({ _csrf: known.csrf, email: account.email }).redirects(1);
    const unknown = await openLogin();
    const b = await unknown.agent.post(`/interaction/${unknown.uid}/identify`).type('form').send({ _csrf: unknown.csrf, email: 'nobody-here@example.com' }).redirects(1);
    expect(a.status).to.equal(200);
    expect(b.status).to.equal(200);
    expect(strip(a.text)).to.equal(strip(b.text));
    expect(a.text).to.contain('name="password"');
    // "Change" goes back to the address step with the address typed, to fix rather than type again.
    const change = `/interaction/${known.uid}?email=${encodeURIComponent(account.email)}`;
    expect(a.text).to.contain(`href="${change}">Change</a>`);
    expect((await known.agent.get(change)).text).to.contain(`value="${account.email}"`);
  });

  it('shows the password page as a GET of its own (Post/Redirect/Get), so Back and reload never resend a form', async () => {
    const account = await createAccount(server.registry);
    const { agent, uid, csrf } = await openLogin();
    const identified = await agent.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrf, email: ` ${account.email.toUpperCase()} ` });
    expect(identified.status).to.equal(303);
    // The address as the identifier step normalized it.
    expect(identified.headers.location).to.equal(`/interaction/${uid}/password?email=${encodeURIComponent(account.email)}`);
    for (const attempt of ['first', 'a reload']) {
      const page = await agent.get(identified.headers.location!);
      expect(page.status, attempt).to.equal(200);
      expect(page.headers['cache-control']).to.equal('no-store');
      expect(page.text).to.contain('name="password"');
      expect(page.text).to.contain(`value="${account.email}"`);
    }
    // No address, or one that is not an address: the address step.
    for (const query of ['', '?email=not-an-address', `?email=${'a'.repeat(330)}%40example.com`]) {
      const res = await agent.get(`/interaction/${uid}/password${query}`);
      expect(res.status, query).to.equal(303);
      expect(res.headers.location).to.equal(`/interaction/${uid}`);
    }
    // The login finished: Back to the password page says so, instead of a form to send again.
    const done = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrf, email: account.email, password: PASSWORD });
    expect(done.status).to.equal(303);
    const back = await agent.get(identified.headers.location!);
    expect(back.status).to.equal(200);
    expect(back.text).to.contain('You’re done here');
    expect(back.text).not.to.contain('name="password"');
  });

  it('gives the same answer for a wrong password and an unknown account', async () => {
    const account = await createAccount(server.registry);
    const wrong = await openLogin();
    const a = await wrong.agent.post(`/interaction/${wrong.uid}/password`).type('form').send({ _csrf: wrong.csrf, email: account.email, password: 'not the password' });
    const unknown = await openLogin();
    const b = await unknown.agent.post(`/interaction/${unknown.uid}/password`).type('form').send({ _csrf: unknown.csrf, email: 'ghost@example.com', password: 'not the password' });
    expect(a.status).to.equal(401);
    expect(b.status).to.equal(401);
    for (const res of [a, b]) {
      expect(res.text).to.contain('Check your email and password');
      expect(res.text).to.contain('role="alert"');
      expect(res.text).to.contain('aria-invalid="true"');
    }
  });

  it('accepts the email in any case and with surrounding spaces', async () => {
    const account = await createAccount(server.registry, { email: 'mixed.case@example.com' });
    const { agent, uid, csrf } = await openLogin();
    const res = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrf, email: '  Mixed.Case@EXAMPLE.com ', password: PASSWORD });
    expect(res.status).to.equal(303);
    expect(res.headers.location).to.match(/[?&]code=/);
    expect(account.email).to.equal('mixed.case@example.com');
  });

  it('tells a deactivated account it cannot sign in only after the right password', async () => {
    const account = await createAccount(server.registry);
    await server.registry.db.query("UPDATE accounts SET status = 'deactivated' WHERE id = $1", [account.id]);
    const wrong = await openLogin();
    const a = await wrong.agent.post(`/interaction/${wrong.uid}/password`).type('form').send({ _csrf: wrong.csrf, email: account.email, password: 'wrong password' });
    expect(a.status).to.equal(401);
    const right = await openLogin();
    const b = await right.agent.post(`/interaction/${right.uid}/password`).type('form').send({ _csrf: right.csrf, email: account.email, password: PASSWORD });
    expect(b.status).to.equal(403);
    expect(b.text).to.contain('This account can’t sign in');
  });

  it('refuses a form without a valid CSRF token and changes nothing', async () => {
    const account = await createAccount(server.registry);
    const { agent, uid } = await openLogin();
    const missing = await agent.post(`/interaction/${uid}/password`).type('form').send({ email: account.email, password: PASSWORD });
    expect(missing.status).to.equal(403);
    expect(missing.text).to.contain('This form has expired');
    const forged = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: 'forged', email: account.email, password: PASSWORD });
    expect(forged.status).to.equal(403);
    // The interaction is still waiting for a login: nothing was completed.
    const page = await agent.get(`/interaction/${uid}`);
    expect(page.status).to.equal(200);
    expect(page.text).to.contain('Log in to continue');
  });

  it('refuses a submission from a browser without the interaction cookie', async () => {
    const { uid, csrf } = await openLogin();
    const stranger = supertest.agent(server.url);
    const res = await stranger.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrf, email: 'a@example.com' });
    expect(res.status).to.equal(403);
  });

  it('says clearly when an interaction has expired or never existed', async () => {
    const { agent } = await openLogin();
    const res = await agent.get('/interaction/does-not-exist').accept('html');
    expect(res.status).to.equal(400);
    expect(res.text).to.contain('This sign-in has ended');
    expect(res.text).not.to.match(/at .*\.ts:\d+/); // no stack trace
  });

  it('explains an invalid email address on the email step', async () => {
    const { agent, uid, csrf } = await openLogin();
    const res = await agent.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrf, email: 'not-an-address' });
    expect(res.status).to.equal(400);
    expect(res.text).to.contain('Enter a valid email address');
    expect(res.text).to.contain('value="not-an-address"');
  });

  it('refuses oversized fields and bodies with a clear message, and keeps serving', async () => {
    const { agent, uid, csrf } = await openLogin();
    const longPassword = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrf, email: 'a@example.com', password: 'x'.repeat(5000) });
    expect(longPassword.status).to.equal(413);
    expect(longPassword.text).to.contain('That was too long');
    const huge = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrf, email: 'a@example.com', password: 'x', pad: 'y'.repeat(100_000) });
    expect(huge.status).to.equal(413);
    const repeated = await agent.post(`/interaction/${uid}/identify`).type('form').send(`_csrf=${csrf}&email=a@example.com&email=b@example.com`);
    expect(repeated.status).to.equal(400);
    const health = await agent.get('/healthz');
    expect(health.status).to.equal(200);
  });

  it('completes a login and continues the authorization to the client', async () => {
    const account = await createAccount(server.registry);
    const { agent, uid, csrf } = await openLogin();
    const done = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrf, email: account.email, password: PASSWORD });
    // The form post resumes the authorization itself (decision 0079): straight to the client.
    expect(done.status).to.equal(303);
    const callback = new URL(done.headers.location!);
    expect(`${callback.origin}${callback.pathname}`).to.equal(client.redirectUri);
    expect(callback.searchParams.get('code')).to.be.a('string');
    expect(callback.searchParams.get('state')).to.equal('state-1');
  });

  it('asks for the password again with prompt=login or max_age=0, even when signed in', async () => {
    const account = await createAccount(server.registry);
    const { agent, uid, csrf } = await openLogin();
    const done = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrf, email: account.email, password: PASSWORD });
    expect(done.headers.location).to.contain(client.redirectUri);

    // Signed in: a plain request goes straight back to the client.
    const silent = await agent.get(authorizationPath(client));
    expect(silent.headers.location).to.contain(client.redirectUri);
    const cases: Record<string, string>[] = [{ prompt: 'login' }, { max_age: '0' }];
    for (const params of cases) {
      const again = await startInteraction(agent, client, params);
      const page = await agent.get(`/interaction/${again}`);
      expect(page.text, JSON.stringify(params)).to.contain('Log in to continue');
      // Its own address is filled in; the person may change it.
      expect(page.text, JSON.stringify(params)).to.contain(`value="${account.email}"`);
    }
  });

  it('lets a login asked of a signed-in browser go on when that session ended meanwhile (a password reset, a sign-out elsewhere)', async () => {
    const account = await createAccount(server.registry);
    const { agent, uid, csrf } = await openLogin();
    const done = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrf, email: account.email, password: PASSWORD });
    expect(done.headers.location).to.contain(client.redirectUri);
    const again = await startInteraction(agent, client, { prompt: 'login' });
    // Every session of the account ends (what a password reset does) before the person goes on.
    await server.registry.accountSessions.endAll(account.id);
    const page = await agent.get(`/interaction/${again}`);
    expect(page.status).to.equal(200);
    expect(page.text).to.contain('Log in to continue');
    const wrong = await agent.post(`/interaction/${again}/password`).type('form').send({ _csrf: csrfFrom(page.text), email: account.email, password: 'not the password' });
    expect(wrong.status, 'every factor is asked again').to.equal(401);
    const finished = await agent.post(`/interaction/${again}/password`).type('form').send({ _csrf: csrfFrom(page.text), email: account.email, password: PASSWORD });
    expect(finished.status).to.equal(303);
    expect(new URL(finished.headers.location!).searchParams.get('code')).to.be.a('string');
  });

  it('lets the user cancel: the client receives access_denied', async () => {
    const { agent, uid, csrf } = await openLogin();
    const res = await agent.post(`/interaction/${uid}/abort`).type('form').send({ _csrf: csrf });
    expect(res.status).to.equal(303);
    const callback = new URL(res.headers.location!);
    expect(`${callback.origin}${callback.pathname}`).to.equal(client.redirectUri);
    expect(callback.searchParams.get('error')).to.equal('access_denied');
    expect(callback.searchParams.get('state')).to.equal('state-1');
  });
});
