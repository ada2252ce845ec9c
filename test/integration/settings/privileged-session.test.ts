import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { startSmtp, type TestSmtp } from '../../helpers/smtp.ts';
import { logInAgain as followLogInAgain, signInToAccount, submit, type Agent } from '../../helpers/account-pages.ts';
import { enrolTwoStep, totpAt } from '../../helpers/two-step.ts';
import { startUpstreamIdp } from '../../helpers/upstream-idp.ts';
import { importLegacy, legacyMember, TRELLO_PASSWORD } from '../../helpers/trello.ts';
import type { Clock } from '../../../src/shared/clock.ts';

const UA = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36';
const ELEVEN_MINUTES = 11 * 60_000;

/**
 * Privileged sessions (docs/flows/settings.md, decision 0027): a sensitive change in settings is
 * confirmed by a recent login at the level the account requires — the decision point's
 * `reauthenticate` and `disable_factor`, given how the browser's session was made — or by any
 * method it lists: the current password typed on the form, or a new login (`prompt=login`),
 * which for a password-less Google account is Google.
 *
 * The decision point reads the time from the server's clock and the login time from the engine's
 * session (real time): moving the clock on ages the login without touching anything else.
 */
describe('settings: privileged sessions (re-authentication by any allowed method)', () => {
  let smtp: TestSmtp;
  let server: TestServer;
  let now = Math.floor(Date.now() / 30_000) * 30_000 + 15_000;
  const clock: Clock = { now: () => now };
  let upstream: Awaited<ReturnType<typeof startUpstreamIdp>>;

  beforeEach(async () => {
    await resetDatabase();
    now = Math.floor(Date.now() / 30_000) * 30_000 + 15_000;
    smtp = await startSmtp();
    upstream = await startUpstreamIdp();
    server = await startTestServer({ clock, overrides: { smtpUrl: smtp.url, google: { issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret } } });
    upstream.configure(`${server.url}/login/google/callback`);
  });
  afterEach(async () => {
    await server.close();
    await upstream.close();
    await smtp.close();
  });

  const signIn = async (email: string) => (await signInToAccount(server.url, email, { userAgent: UA })).agent;
  const outboxTo = async (email: string) => (await server.registry.db.query<{ n: number }>('SELECT count(*)::int AS n FROM mail_outbox WHERE recipient = $1', [email])).rows[0]!.n;

  const logInAgain = (agent: Agent, href: string, proof: { email: string; password: string; code?: () => Promise<string> }) => followLogInAgain(agent, server.url, href, proof);

  it('links a Trello account only after a recent login or the current password: a session left open is not enough (decision 0087)', async () => {
    const account = await createAccount(server.registry, { email: 'linker@example.com' });
    const agent = await signIn(account.email);
    const member = legacyMember({ username: 'intruders-own', emails: [{ address: 'intruder@trello-era.example', verified: true, primary: true }] });
    await importLegacy(server.registry, [member]);
    now += ELEVEN_MINUTES;
    const form = await agent.get('/account/trello');
    expect(form.text).to.contain('Confirm it’s you');
    expect(form.text).to.contain('id="current"');
    const refused = await submit(agent, '/account/trello', '/account/trello', { login: 'intruders-own', password: TRELLO_PASSWORD });
    expect(refused.status).to.equal(403);
    const wrong = await submit(agent, '/account/trello', '/account/trello', { login: 'intruders-own', password: TRELLO_PASSWORD, current: 'not my password' });
    expect(wrong.status).to.equal(400);
    expect(wrong.text).to.match(/id="current"[^>]*aria-invalid="true"/);
    expect((await server.registry.trello.linking.findByMemberId(member.id))?.linked_account_id, 'nothing linked').to.equal(null);
    const review = await submit(agent, '/account/trello', '/account/trello', { login: 'intruders-own', password: TRELLO_PASSWORD, current: PASSWORD });
    expect(review.status).to.equal(200);
    const linked = await agent.post('/account/trello/link').type('form').send({ _csrf: csrfFrom(review.text) });
    expect(linked.status).to.equal(303);
    expect((await server.registry.trello.linking.findByMemberId(member.id))?.linked_account_id).to.equal(account.id);
  });

  it('lets a recent login change the password, the address and close the account without typing the password', async () => {
    const account = await createAccount(server.registry);
    const agent = await signIn(account.email);
    const form = await agent.get('/account/password');
    expect(form.text, 'no current password asked').not.to.contain('id="current"');
    expect(form.text).not.to.contain('Confirm it’s you');
    const changed = await submit(agent, '/account/password', '/account/password', { password: 'changed without retyping' });
    expect(changed.status).to.equal(303);
    expect((await server.registry.accounts.authenticate(account.email, 'changed without retyping')).ok).to.equal(true);

    const email = await submit(agent, '/account/email', '/account/email', { email: 'moved@example.com' });
    expect(email.status).to.equal(303);
    expect(await outboxTo('moved@example.com')).to.equal(1);

    const closed = await submit(agent, '/account/close', '/account/close', {});
    expect(closed.status).to.equal(303);
    expect((await server.registry.accounts.findById(account.id))?.status).to.equal('closed');
  });

  it('refuses an old session every sensitive change until the person confirms: the password typed, or a new login', async () => {
    const account = await createAccount(server.registry);
    const agent = await signIn(account.email);
    now += ELEVEN_MINUTES;

    // A stolen (or forgotten) session of more than ten minutes changes nothing on its own.
    const page = await agent.get('/account/password');
    expect(page.text).to.contain('Confirm it’s you').and.contain('id="current"');
    const password = await submit(agent, '/account/password', '/account/password', { password: 'a thief’s new password' });
    expect(password.status).to.equal(403);
    expect(password.text).to.contain('Confirm it’s you');
    expect((await server.registry.accounts.authenticate(account.email, PASSWORD)).ok, 'unchanged').to.equal(true);
    const email = await submit(agent, '/account/email', '/account/email', { email: 'thief@example.com' });
    expect(email.status).to.equal(403);
    expect(await outboxTo('thief@example.com'), 'no link to the new address').to.equal(0);
    const close = await submit(agent, '/account/close', '/account/close', {});
    expect(close.status).to.equal(403);
    expect((await server.registry.accounts.findById(account.id))?.status).to.equal('active');
    const twoStep = await submit(agent, '/account/security', '/account/security/two-step/start', {});
    expect(twoStep.status, 'nor put its own authenticator on the account').to.equal(403);

    // One way: the current password, typed on the form (and throttled like a login).
    const wrong = await submit(agent, '/account/password', '/account/password', { current: 'a guess', password: 'a thief’s new password' });
    expect(wrong.status).to.equal(400);
    expect(wrong.text).to.contain('Your current password is not right');
    const typed = await submit(agent, '/account/password', '/account/password', { current: PASSWORD, password: 'confirmed by typing it' });
    expect(typed.status).to.equal(303);

    // The other: log in again (prompt=login), then the change needs nothing more.
    now += ELEVEN_MINUTES;
    const close2 = await agent.get('/account/close');
    const href = /id="log-in-again" href="([^"]+)"/.exec(close2.text)![1]!;
    expect(href).to.equal('/account/login?reauth=1&amp;next=%2Faccount%2Fclose');
    const start = await agent.get(href.replace(/&amp;/g, '&'));
    const auth = new URL(start.headers.location!, server.url);
    expect(auth.searchParams.get('prompt')).to.equal('login');
    expect(auth.searchParams.get('login_hint')).to.equal(account.email);
    now = Date.now(); // the new login happens at the engine's (real) time
    expect(await logInAgain(agent, href, { email: account.email, password: 'confirmed by typing it' })).to.equal('/account/close');
    const after = await agent.get('/account/close');
    expect(after.text).not.to.contain('Confirm it’s you');
    expect((await submit(agent, '/account/close', '/account/close', {})).status).to.equal(303);
    expect((await server.registry.accounts.findById(account.id))?.status).to.equal('closed');
  });

  it('asks for two factors once two-step verification became required: a recent one-factor login and the password alone no longer do', async () => {
    const account = await createAccount(server.registry);
    const agent = await signIn(account.email);
    const row = (await server.registry.accounts.findById(account.id))!;
    const { secret } = await enrolTwoStep(server.registry, row);
    // Before: the recent password login is enough.
    const before = await agent.get('/account/email');
    expect(before.text).not.to.contain('Confirm it’s you');
    const csrf = csrfFrom(before.text);

    // The operator's flag, which only the decision point reads here.
    await server.registry.db.query('UPDATE accounts SET two_step_required = true WHERE id = $1', [account.id]);
    // The one-factor session no longer opens the settings at all (the decision point's session
    // stage, as a relying party's /auth would): it is sent to log in again at two factors, and a
    // form posted meanwhile — with or without the password — changes nothing.
    const page = await agent.get('/account/email');
    expect(page.status).to.equal(303);
    expect(page.headers.location).to.equal('/account/login?reauth=1&next=%2Faccount%2Femail');
    for (const fields of [{ email: 'new@example.com' }, { email: 'new@example.com', password: PASSWORD }]) {
      const res = await agent.post('/account/email').type('form').send({ _csrf: csrf, ...fields });
      expect(res.status, JSON.stringify(fields)).to.equal(401);
    }
    expect(await outboxTo('new@example.com')).to.equal(0);

    // A new login with the password and the code reaches two factors.
    now += 30_000;
    const href = page.headers.location!;
    expect(await logInAgain(agent, href, { email: account.email, password: PASSWORD, code: () => totpAt(secret, now) })).to.equal('/account/email');
    const done = await submit(agent, '/account/email', '/account/email', { email: 'new@example.com' });
    expect(done.status).to.equal(303);
    expect(await outboxTo('new@example.com')).to.equal(1);
  });

  it('turns two-step off after a recent two-factor login with nothing typed; after a one-factor login only with the password and a code', async () => {
    const account = await createAccount(server.registry);
    const row = (await server.registry.accounts.findById(account.id))!;
    const { secret } = await enrolTwoStep(server.registry, row);

    // Signed in with password and code: two factors, just now.
    const agent = supertest.agent(server.url).set('User-Agent', UA);
    now += 30_000;
    expect(await logInAgain(agent, '/account/login?next=/account/security', { email: account.email, password: PASSWORD, code: () => totpAt(secret, now) })).to.equal('/account/security');
    const page = await agent.get('/account/security');
    expect(page.text).to.contain('Turn off two-step verification').and.not.to.contain('id="off-code"');
    // New recovery codes with nothing to type ask first too: the codes kept until now stop working.
    const codes = async () => (await server.registry.db.query<{ code_hash: string }>('SELECT code_hash FROM recovery_codes WHERE account_id = $1 ORDER BY code_hash', [account.id])).rows.map((r) => r.code_hash);
    const before = await codes();
    const codesAsked = await submit(agent, '/account/security', '/account/security/recovery-codes', {});
    expect(codesAsked.status).to.equal(200);
    expect(codesAsked.text).to.contain('Make new recovery codes?').and.to.contain('The codes you have now stop working at once');
    expect(await codes(), 'the first click changes nothing').to.deep.equal(before);
    const madePost = await agent.post('/account/security/recovery-codes').type('form').send({ _csrf: csrfFrom(codesAsked.text), confirmed: 'yes' });
    expect(madePost.status).to.equal(303);
    const made = await agent.get(madePost.headers.location!);
    expect(made.text.match(/<li><code>[a-z2-9]{5}-[a-z2-9]{5}<\/code><\/li>/g)).to.have.length(10);
    expect(await codes()).not.to.deep.equal(before);

    // Nothing to type, so the click asks first: what turning it off means, and a button that says so.
    const asked = await submit(agent, '/account/security', '/account/security/two-step/disable', {});
    expect(asked.status).to.equal(200);
    expect(asked.text).to.contain('Turn off two-step verification?').and.contain('Your password alone will sign you in').and.contain('name="confirmed" value="yes"');
    expect((await server.registry.twoStep.status(account.id)).enabled, 'the first click changes nothing').to.equal(true);
    // A code of blanks is nothing typed: the same question, nothing changed.
    const blank = await submit(agent, '/account/security', '/account/security/two-step/disable', { code: ' \t' });
    expect(blank.status).to.equal(200);
    expect(blank.text).to.contain('Turn off two-step verification?');
    expect((await server.registry.twoStep.status(account.id)).enabled).to.equal(true);
    const off = await agent.post('/account/security/two-step/disable').type('form').send({ _csrf: csrfFrom(asked.text), confirmed: 'yes' });
    expect(off.status).to.equal(303);
    expect((await agent.get(off.headers.location!)).text).to.contain('Two-step verification is off.');
    expect((await server.registry.twoStep.status(account.id)).enabled).to.equal(false);

    // On again, from a session whose login was one factor (it was off then).
    const other = await signIn(account.email);
    const again = await enrolTwoStep(server.registry, row);
    const onePage = await other.get('/account/security');
    expect(onePage.text).to.contain('id="off-password"').and.contain('id="off-code"');
    const bare = await submit(other, '/account/security', '/account/security/two-step/disable', {});
    expect(bare.status).to.equal(403);
    const passwordOnly = await submit(other, '/account/security', '/account/security/two-step/disable', { password: PASSWORD });
    expect(passwordOnly.status).to.equal(403);
    expect((await server.registry.twoStep.status(account.id)).enabled).to.equal(true);
    now += 30_000;
    const both = await submit(other, '/account/security', '/account/security/two-step/disable', { password: PASSWORD, code: await totpAt(again.secret, now) });
    expect(both.status).to.equal(303);
    expect((await server.registry.twoStep.status(account.id)).enabled).to.equal(false);
  });

  it('lets a password-less Google account add a password without a current one, and confirm through Google when its login is old', async () => {
    upstream.signInAs({ sub: 'g-grace', email: 'grace@gmail.com', email_verified: true, name: 'Grace Hopper' });
    const google = supertest.agent(upstream.issuer);
    const agent = supertest.agent(server.url).set('User-Agent', UA);

    /** Follows redirects across Lanyard and the Google stand-in, clicking "Continue with Google" on the login page. */
    async function viaGoogle(start: string): Promise<string> {
      let location = `${server.url}${start}`;
      for (let i = 0; i < 25; i += 1) {
        const url = new URL(location);
        const onLanyard = url.origin === server.url;
        const res = await (onLanyard ? agent : google).get(url.pathname + url.search);
        if (res.status === 302 || res.status === 303) {
          location = new URL(res.headers.location!, url).href;
          continue;
        }
        const uid = onLanyard ? /^\/interaction\/([^/?]+)$/.exec(url.pathname)?.[1] : undefined;
        if (!uid) return url.pathname;
        expect(res.text).to.contain(`href="/interaction/${uid}/google"`);
        location = `${server.url}/interaction/${uid}/google`;
      }
      throw new Error('too many redirects');
    }

    expect(await viaGoogle('/account/password')).to.equal('/account/password');
    const account = (await server.registry.accounts.findByEmail('grace@gmail.com'))!;
    expect(account.password_hash).to.equal(null);
    const form = await agent.get('/account/password');
    expect(form.text).to.contain('Set a password').and.not.to.contain('id="current"');

    now += ELEVEN_MINUTES;
    const old = await agent.get('/account/password');
    expect(old.text).to.contain('Confirm it’s you').and.contain('with Google');
    expect(old.text, 'never asked for a password it does not have').not.to.contain('id="current"');
    const refused = await submit(agent, '/account/password', '/account/password', { password: 'a first password of her own' });
    expect(refused.status).to.equal(403);
    expect((await server.registry.accounts.findById(account.id))?.password_hash).to.equal(null);

    // "Log in again" → the login pages (prompt=login) → Google → back, confirmed.
    const href = /id="log-in-again" href="([^"]+)"/.exec(old.text)![1]!.replace(/&amp;/g, '&');
    // Google answering from its own standing session (an old auth_time, whatever max_age asked)
    // does not confirm anything.
    upstream.staleNext(3600);
    const stale = await viaGoogle(href);
    expect(stale).to.match(/^\/interaction\/[^/]+\/google\/callback$/);
    expect((await submit(agent, '/account/password', '/account/password', { password: 'a first password of her own' })).status).to.equal(403);
    // The stand-in stamps auth_time with the real clock: ours follows it for the new sign-in.
    now = Date.now();
    expect(await viaGoogle(href)).to.equal('/account/password');
    // Only the re-authentications asked Google for a new sign-in (max_age=0); the first login did not.
    expect(upstream.requests.map((q) => q.get('max_age'))).to.deep.equal([null, '0', '0']);
    const set = await submit(agent, '/account/password', '/account/password', { password: 'a first password of her own' });
    expect(set.status).to.equal(303);
    expect((await server.registry.accounts.authenticate('grace@gmail.com', 'a first password of her own')).ok).to.equal(true);
  });
});
