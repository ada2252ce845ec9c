import { expect } from 'chai';
import supertest from 'supertest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import { createAccount, createClient } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { startSmtp, linkIn, type TestSmtp } from '../../helpers/smtp.ts';
import type { Clock } from '../../../src/shared/clock.ts';

const PASSWORD = 'my new account passphrase';

describe('sign-up with a verified email (/interaction/:uid/signup)', () => {
  let smtp: TestSmtp;
  let server: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;
  let now = Date.now();
  const clock: Clock = { now: () => now };

  beforeEach(async () => {
    await resetDatabase();
    now = Date.now();
    smtp = await startSmtp();
    server = await startTestServer({ clock, overrides: { smtpUrl: smtp.url } });
    client = await createClient(server.registry, { firstParty: true, name: 'Trello' });
  });
  afterEach(async () => {
    await server.close();
    await smtp.close();
  });

  /** Starts an authorization with PKCE and opens the sign-up page of its interaction. */
  async function openSignUp() {
    const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: client.redirectUri, scope: 'openid email profile', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'xyz' });
    const agent = supertest.agent(server.url);
    const auth = await agent.get(url.pathname + url.search);
    const uid = /\/interaction\/([^/?]+)/.exec(auth.headers.location!)![1]!;
    const login = await agent.get(`/interaction/${uid}`);
    expect(login.text).to.contain(`/interaction/${uid}/signup`);
    const page = await agent.get(`/interaction/${uid}/signup`);
    expect(page.status).to.equal(200);
    return { agent, uid, csrf: csrfFrom(page.text), config, verifier };
  }

  async function submitEmail(flow: Awaited<ReturnType<typeof openSignUp>>, email: string) {
    const posted = await flow.agent.post(`/interaction/${flow.uid}/signup`).type('form').send({ _csrf: flow.csrf, email });
    // Post/Redirect/Get: "Check your email" is the code page's GET (a refusal answers at once).
    const res = posted.status === 303 && posted.headers.location === `/interaction/${flow.uid}/signup/code` ? await flow.agent.get(posted.headers.location) : posted;
    await server.registry.background.idle();
    await server.registry.mail.delivery.deliverDue();
    return res;
  }

  // The code stands on a line of its own in the message body (never in the subject).
  const codeIn = (text: string | undefined) => /^\s+(\d{6})\s*$/m.exec(text ?? '')?.[1];

  it('verifies by code, creates the account, signs it in and returns to the relying party', async () => {
    const flow = await openSignUp();
    const sent = await submitEmail(flow, 'New.Person@Example.com');
    expect(sent.status).to.equal(200);
    expect(sent.text).to.contain('We sent a 6-digit code');

    const mail = await smtp.lastTo('new.person@example.com');
    const code = codeIn(mail.text);
    expect(code).to.match(/^\d{6}$/);
    expect(mail.subject).to.equal('Your Lanyard verification code');
    // The subject outlives the sealed body in the outbox: it must not carry the code.
    const stored = await server.registry.db.query<{ subject: string }>(`SELECT subject FROM mail_outbox WHERE recipient = 'new.person@example.com'`);
    expect(stored.rows.map((r) => r.subject)).to.deep.equal(['Your Lanyard verification code']);

    // Spaces are ignored, and the field takes a code typed in pairs (a browser stops at maxlength).
    const spaced = code!.replace(/(\d{2})(?=\d)/g, '$1 ');
    expect(Number(/id="code"[^>]*maxlength="(\d+)"/.exec(sent.text)?.[1])).to.be.at.least(spaced.length);
    const verified = await flow.agent.post(`/interaction/${flow.uid}/signup/code`).type('form').send({ _csrf: flow.csrf, code: spaced });
    expect(verified.status).to.equal(303);
    const details = await flow.agent.get(verified.headers.location!);
    expect(details.text).to.contain('new.person@example.com');
    expect(details.text, 'the last step can be cancelled too').to.contain(`action="/interaction/${flow.uid}/abort"`);
    const done = await flow.agent.post(`/interaction/${flow.uid}/signup/details`).type('form').send({ _csrf: flow.csrf, name: 'New Person', password: PASSWORD });
    expect(done.status, done.text.slice(0, 300)).to.equal(303);

    // The form post resumes the authorization itself (decision 0079): straight to the client.
    const callback = new URL(done.headers.location!);
    const tokens = await oidc.authorizationCodeGrant(flow.config, callback, { pkceCodeVerifier: flow.verifier, expectedState: 'xyz' });
    const claims = tokens.claims()!;
    const account = await server.registry.accounts.findByEmail('new.person@example.com');
    expect(claims.sub).to.equal(account!.id);
    const userinfo = await oidc.fetchUserInfo(flow.config, tokens.access_token, claims.sub);
    expect(userinfo).to.include({ email: 'new.person@example.com', email_verified: true, name: 'New Person' });
    expect((await server.registry.accounts.authenticate('new.person@example.com', PASSWORD)).ok).to.equal(true);
  });

  it('verifies by the emailed link in the same browser', async () => {
    const flow = await openSignUp();
    await submitEmail(flow, 'linker@example.com');
    const link = linkIn(await smtp.lastTo('linker@example.com'), `${server.url}/interaction/${flow.uid}/signup/verify?token=`);
    const res = await flow.agent.get(new URL(link).pathname + new URL(link).search);
    expect(res.status).to.equal(303);
    expect(res.headers.location).to.equal(`/interaction/${flow.uid}/signup/details`);
    const again = await supertest(server.url).get(new URL(link).pathname + new URL(link).search);
    expect(again.status, 'the link works once').to.equal(400);
    // Opened again in the same browser (a double click, a second tab): back to the details form.
    const twice = await flow.agent.get(new URL(link).pathname + new URL(link).search);
    expect([twice.status, twice.headers.location]).to.deep.equal([303, `/interaction/${flow.uid}/signup/details`]);
    expect((await flow.agent.get(twice.headers.location!)).text).to.contain('Finish creating your account');
  });

  it('does not verify by a link opened in another browser (someone else may have started the sign-up)', async () => {
    const flow = await openSignUp();
    await submitEmail(flow, 'phone@example.com');
    const link = linkIn(await smtp.lastTo('phone@example.com'), `${server.url}/interaction/${flow.uid}/signup/verify?token=`);
    const elsewhere = await supertest(server.url).get(new URL(link).pathname + new URL(link).search);
    expect(elsewhere.status).to.equal(200);
    expect(elsewhere.text).to.contain('only works in the browser where you started');
    const details = await flow.agent.get(`/interaction/${flow.uid}/signup/details`);
    expect(details.status, 'the flow is not verified').to.equal(400);
    // The same link still works where the sign-up started.
    const here = await flow.agent.get(new URL(link).pathname + new URL(link).search);
    expect(here.status).to.equal(303);
  });

  it('tells an existing account by email, not on the page', async () => {
    await createAccount(server.registry, { email: 'taken@example.com' });
    const strip = (html: string) => html.replace(/name="_csrf" value="[^"]+"/g, '').replace(/\/interaction\/[^/"]+/g, '').replace(/<strong>[^<]*@[^<]*<\/strong>/, '');
    const a = await submitEmail(await openSignUp(), 'taken@example.com');
    const b = await submitEmail(await openSignUp(), 'fresh@example.com');
    expect(a.status).to.equal(b.status);
    expect(strip(a.text)).to.equal(strip(b.text));
    const notice = await smtp.lastTo('taken@example.com');
    expect(notice.subject).to.equal('You already have a Lanyard account');
    expect(notice.text).to.contain('/password/forgot');
    // Every link in it leads to a page (the "Log in" one used to end on a 404 at the root).
    const links = (notice.text ?? '').split(/\s+/).filter((word) => word.startsWith(server.url));
    expect(links).to.have.length.of.at.least(2);
    for (const link of links) {
      const browser = supertest.agent(server.url);
      let location = link.slice(server.url.length);
      let res = await browser.get(location);
      for (let hop = 0; hop < 6 && [302, 303].includes(res.status); hop += 1) {
        location = res.headers.location!.replace(server.url, '');
        res = await browser.get(location);
      }
      expect(res.status, `${link} ends at ${location}`).to.equal(200);
      expect(res.text).to.match(/<form method="post"/);
    }
  });

  it('answers wrong codes for a taken address exactly as for a new one, and no code ever verifies it', async () => {
    await createAccount(server.registry, { email: 'taken@example.com' });
    const taken = await openSignUp();
    const fresh = await openSignUp();
    await submitEmail(taken, 'taken@example.com');
    await submitEmail(fresh, 'fresh@example.com');
    const strip = (html: string) => html.replace(/name="_csrf" value="[^"]+"/g, '').replace(/\/interaction\/[^/"]+/g, '').replace(/[a-z]+@example\.com/g, '');
    for (let i = 0; i < 5; i += 1) {
      const a = await taken.agent.post(`/interaction/${taken.uid}/signup/code`).type('form').send({ _csrf: taken.csrf, code: String(123456 + i) });
      const b = await fresh.agent.post(`/interaction/${fresh.uid}/signup/code`).type('form').send({ _csrf: fresh.csrf, code: String(123456 + i) });
      expect(a.status, `attempt ${i + 1}`).to.equal(b.status);
      expect(strip(a.text), `attempt ${i + 1}`).to.equal(strip(b.text));
      expect(a.text).to.match(i < 4 ? /That code isn’t right/ : /Too many wrong codes/);
    }
    const { rows } = await (await testDatabase()).query<{ verified_at: Date | null }>("SELECT verified_at FROM signup_flows WHERE email = 'taken@example.com'");
    expect(rows.map((r) => r.verified_at)).to.deep.equal([null]);
  });

  it('locks the code after five wrong attempts', async () => {
    const flow = await openSignUp();
    await submitEmail(flow, 'guess@example.com');
    const code = codeIn((await smtp.lastTo('guess@example.com')).text)!;
    const wrong = code === '000000' ? '111111' : '000000';
    for (let i = 0; i < 4; i += 1) {
      const res = await flow.agent.post(`/interaction/${flow.uid}/signup/code`).type('form').send({ _csrf: flow.csrf, code: wrong });
      expect(res.text).to.contain('That code isn’t right');
    }
    const fifth = await flow.agent.post(`/interaction/${flow.uid}/signup/code`).type('form').send({ _csrf: flow.csrf, code: wrong });
    expect(fifth.text).to.contain('Too many wrong codes');
    const right = await flow.agent.post(`/interaction/${flow.uid}/signup/code`).type('form').send({ _csrf: flow.csrf, code });
    expect(right.status).to.equal(400);
    expect(right.text).to.contain('Too many wrong codes');
    // "Send a new code" sends one to the same address, which then works — once the wait the
    // wrong codes earned is over (the throttle counts per sign-up, not per code).
    expect(right.text).to.contain('Send a new code to guess@example.com');
    now += 10 * 60_000;
    const again = await flow.agent.post(`/interaction/${flow.uid}/signup`).type('form').send({ _csrf: csrfFrom(right.text), email: /name="email" value="([^"]+)"/.exec(right.text)![1] });
    expect(again.status).to.equal(303);
    await server.registry.background.idle();
    await server.registry.mail.delivery.deliverDue();
    const fresh = codeIn((await smtp.lastTo('guess@example.com')).text)!;
    const verified = await flow.agent.post(`/interaction/${flow.uid}/signup/code`).type('form').send({ _csrf: flow.csrf, code: fresh });
    expect(verified.status, verified.text.slice(0, 300)).to.equal(303);
  });

  it('expires the code after fifteen minutes', async () => {
    const flow = await openSignUp();
    await submitEmail(flow, 'late@example.com');
    const code = codeIn((await smtp.lastTo('late@example.com')).text)!;
    now += 15 * 60_000 + 1000;
    const res = await flow.agent.post(`/interaction/${flow.uid}/signup/code`).type('form').send({ _csrf: flow.csrf, code });
    expect(res.text).to.contain('This sign-up has expired');
  });

  it('applies the password rules and refuses the details step before verification', async () => {
    const flow = await openSignUp();
    const early = await flow.agent.get(`/interaction/${flow.uid}/signup/details`);
    expect(early.status).to.equal(400);
    await submitEmail(flow, 'rules@example.com');
    const code = codeIn((await smtp.lastTo('rules@example.com')).text)!;
    await flow.agent.post(`/interaction/${flow.uid}/signup/code`).type('form').send({ _csrf: flow.csrf, code });
    const common = await flow.agent.post(`/interaction/${flow.uid}/signup/details`).type('form').send({ _csrf: flow.csrf, name: 'Rules', password: 'qwerty123' });
    expect(common.status).to.equal(400);
    expect(common.text).to.contain('That password is too common');
    expect(common.text).to.contain('value="Rules"');
    // The field at fault, and only it, is marked for assistive technology.
    const invalid = (html: string) => [...html.matchAll(/<input id="(\w+)"[^>]*aria-invalid="true"/g)].map((m) => m[1]);
    expect(invalid(common.text)).to.deep.equal(['password']);
    const noName = await flow.agent.post(`/interaction/${flow.uid}/signup/details`).type('form').send({ _csrf: flow.csrf, name: '  ', password: PASSWORD });
    expect(noName.text).to.contain('Enter your name');
    expect(invalid(noName.text)).to.deep.equal(['name']);
    expect(await server.registry.accounts.findByEmail('rules@example.com')).to.equal(undefined);
  });

  it('refuses to create a second account when the address was registered meanwhile', async () => {
    const flow = await openSignUp();
    await submitEmail(flow, 'race@example.com');
    const code = codeIn((await smtp.lastTo('race@example.com')).text)!;
    await flow.agent.post(`/interaction/${flow.uid}/signup/code`).type('form').send({ _csrf: flow.csrf, code });
    await createAccount(server.registry, { email: 'race@example.com' });
    const res = await flow.agent.post(`/interaction/${flow.uid}/signup/details`).type('form').send({ _csrf: flow.csrf, name: 'Racer', password: PASSWORD });
    expect(res.status).to.equal(409);
    expect(res.text).to.contain('already has an account');
  });

  it('stores codes and link tokens only as keyed hashes', async () => {
    const flow = await openSignUp();
    await submitEmail(flow, 'hashes@example.com');
    const mail = await smtp.lastTo('hashes@example.com');
    const code = codeIn(mail.text)!;
    const token = new URL(linkIn(mail, `${server.url}/interaction/`)).searchParams.get('token')!;
    const { rows } = await (await testDatabase()).query<{ dump: string }>("SELECT code_hash || ' ' || link_hash AS dump FROM signup_flows");
    expect(rows[0]!.dump).not.to.contain(code).and.not.contain(token);
  });
});
