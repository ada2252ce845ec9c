import { expect } from 'chai';
import supertest from 'supertest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom, PageDriver } from '../../helpers/login-driver.ts';
import { startSmtp, type TestSmtp } from '../../helpers/smtp.ts';
import { signInToAccount, submit, type Agent } from '../../helpers/account-pages.ts';
import { totpAt } from '../../helpers/two-step.ts';
import type { Clock } from '../../../src/shared/clock.ts';

const UA = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36';

describe('settings: security, two-step verification and the audit trail (/account/security, /api/security-events)', () => {
  let smtp: TestSmtp;
  let server: TestServer;
  let now = Math.floor(Date.now() / 30_000) * 30_000 + 15_000;
  const clock: Clock = { now: () => now };

  beforeEach(async () => {
    await resetDatabase();
    now = Math.floor(Date.now() / 30_000) * 30_000 + 15_000;
    smtp = await startSmtp();
    server = await startTestServer({ clock, overrides: { smtpUrl: smtp.url } });
  });
  afterEach(async () => {
    await server.close();
    await smtp.close();
  });

  const signIn = async (email: string) => (await signInToAccount(server.url, email, { userAgent: UA })).agent;
  const post = (agent: Agent, path: string, fields: Record<string, string> = {}) => submit(agent, '/account/security', path, fields);

  async function turnOn(agent: Agent): Promise<{ secret: string; page: supertest.Response }> {
    const start = await post(agent, '/account/security/two-step/start', { password: PASSWORD });
    expect(start.status).to.equal(200);
    const secret = /id="manual-key" class="key">([A-Z2-7 ]+)</.exec(start.text)![1]!.replace(/ /g, '');
    const page = await agent.post('/account/security/two-step/confirm').type('form').send({ _csrf: csrfFrom(start.text), code: await totpAt(secret, now) });
    return { secret, page };
  }

  it('turns two-step verification on with a QR code, the manual key and a confirming code', async () => {
    const account = await createAccount(server.registry);
    const agent = await signIn(account.email);
    const before = await agent.get('/account/security');
    expect(before.status).to.equal(200);
    expect(before.text).to.match(/id="two-step-status"><span class="badge">Off/);

    const noPassword = await post(agent, '/account/security/two-step/start', { password: 'not it' });
    expect(noPassword.status, 'a session alone cannot add an authenticator').to.equal(400);
    const start = await post(agent, '/account/security/two-step/start', { password: PASSWORD });
    expect(start.text).to.match(/<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    const secret = /id="manual-key" class="key">([A-Z2-7 ]+)</.exec(start.text)![1]!.replace(/ /g, '');
    expect(secret).to.have.length.of.at.least(32);
    // On a phone, the same secret opens the authenticator app (the QR code's URI, HTML-escaped).
    const uri = /href="(otpauth:\/\/totp\/[^"]+)" id="open-authenticator"/.exec(start.text)![1]!.replace(/&amp;/g, '&');
    expect(new URL(uri).searchParams.get('secret')).to.equal(secret);

    const wrong = await agent.post('/account/security/two-step/confirm').type('form').send({ _csrf: csrfFrom(start.text), code: '123456' });
    expect(wrong.status).to.equal(400);
    expect(wrong.text).to.contain('That code isn’t right');
    expect((await server.registry.twoStep.status(account.id)).enabled).to.equal(false);

    const confirmedPost = await agent.post('/account/security/two-step/confirm').type('form').send({ _csrf: csrfFrom(start.text), code: await totpAt(secret, now) });
    // Post/Redirect/Get: the codes have a page of their own, which a reload shows again.
    expect(confirmedPost.status).to.equal(303);
    expect(confirmedPost.headers.location).to.equal('/account/security/recovery-codes');
    const done = await agent.get('/account/security/recovery-codes');
    expect(done.status).to.equal(200);
    expect((await agent.get('/account/security/recovery-codes')).text, 'a reload shows the same codes').to.equal(done.text);
    expect(done.text.match(/<li><code>[a-z2-9]{5}-[a-z2-9]{5}<\/code><\/li>/g)).to.have.length(10);
    const download = /href="(data:text\/plain;charset=utf-8,[^"]+)" download="lanyard-recovery-codes.txt"/.exec(done.text)![1]!;
    const file = decodeURIComponent(download.split(',')[1]!);
    expect(file).to.contain(account.email);
    expect(file.match(/^[a-z2-9]{5}-[a-z2-9]{5}$/gm)).to.have.length(10);

    await server.registry.mail.delivery.deliverDue();
    const mail = (await smtp.lastTo(account.email, 'Two-step verification was turned on for your Lanyard account')).text;
    expect(mail).to.contain('authenticator app');
    // The mail writes the time as the pages do.
    expect(mail).to.match(/\) on \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\./);
    const after = await agent.get('/account/security');
    expect(after.text).to.match(/id="two-step-status"><span class="badge">On<\/span> since \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\./);
    expect(after.text).to.contain('10 unused recovery codes');
    expect(after.text).to.contain('Two-step verification turned on');
  });

  it('keeps a secret being set up in the browser that asked: another session never sees or confirms it', async () => {
    const account = await createAccount(server.registry);
    const owner = await signIn(account.email);
    const start = await post(owner, '/account/security/two-step/start', { password: PASSWORD });
    const secret = /id="manual-key" class="key">([A-Z2-7 ]+)</.exec(start.text)![1]!.replace(/ /g, '');
    const other = await signIn(account.email);
    const probe = await post(other, '/account/security/two-step/confirm', { code: '000000' });
    expect(probe.status).to.equal(400);
    expect(probe.text).not.to.contain(secret.slice(0, 8));
    const steal = await post(other, '/account/security/two-step/confirm', { code: await totpAt(secret, now) });
    expect(steal.status).to.equal(400);
    expect((await server.registry.twoStep.status(account.id)).enabled).to.equal(false);
    const db = await testDatabase();
    expect((await db.query('SELECT 1 FROM totp_factors WHERE account_id = $1', [account.id])).rows, 'nothing stored before the first code').to.have.length(0);
  });

  it('turns it off only with the password and a current code, and emails the owner', async () => {
    const account = await createAccount(server.registry);
    const agent = await signIn(account.email);
    const { secret } = await turnOn(agent);
    now += 30_000;

    const badPassword = await post(agent, '/account/security/two-step/disable', { password: 'not it', code: await totpAt(secret, now) });
    expect(badPassword.status).to.equal(400);
    expect(badPassword.text).to.contain('Your current password is not right');
    const badCode = await post(agent, '/account/security/two-step/disable', { password: PASSWORD, code: '000000' });
    expect(badCode.status).to.equal(400);
    expect(badCode.text).to.contain('That code isn’t right');
    expect((await server.registry.twoStep.status(account.id)).enabled).to.equal(true);

    const off = await post(agent, '/account/security/two-step/disable', { password: PASSWORD, code: await totpAt(secret, now) });
    // Post/Redirect/Get: the page says it once; a reload shows the page, not the form sent again.
    expect(off.status).to.equal(303);
    expect(off.headers.location).to.equal('/account/security');
    const offPage = await agent.get('/account/security');
    expect(offPage.text).to.contain('Two-step verification is off.').and.to.contain('Your password alone signs you in.');
    expect((await agent.get('/account/security')).text).not.to.contain('Two-step verification is off.');
    expect((await server.registry.twoStep.status(account.id)).enabled).to.equal(false);
    const db = await testDatabase();
    expect((await db.query('SELECT 1 FROM recovery_codes WHERE account_id = $1', [account.id])).rows).to.have.length(0);

    await server.registry.mail.delivery.deliverDue();
    // Two messages went out (turned on, turned off); delivery order between them is not fixed.
    const mail = await smtp.lastTo(account.email, 'Two-step verification was turned off for your Lanyard account');
    expect(mail.text).to.contain(`${server.url}/password/forgot`);
  });

  it('makes new recovery codes only with the password', async () => {
    const account = await createAccount(server.registry);
    const agent = await signIn(account.email);
    await turnOn(agent);
    const refused = await post(agent, '/account/security/recovery-codes', { password: 'wrong' });
    expect(refused.status).to.equal(400);
    const made = await post(agent, '/account/security/recovery-codes', { password: PASSWORD });
    expect(made.status).to.equal(303);
    const fresh = await agent.get(made.headers.location!);
    expect(fresh.status).to.equal(200);
    expect(fresh.text).to.contain('New recovery codes');
    expect(fresh.text.match(/<li><code>[a-z2-9]{5}-[a-z2-9]{5}<\/code><\/li>/g)).to.have.length(10);
    // A reload shows the same set and makes none: the set just saved keeps working.
    const stored = async () => (await server.registry.db.query<{ code_hash: string }>('SELECT code_hash FROM recovery_codes WHERE account_id = $1 ORDER BY code_hash', [account.id])).rows;
    const before = await stored();
    expect((await agent.get('/account/security/recovery-codes')).text).to.equal(fresh.text);
    expect(await stored()).to.deep.equal(before);
    // Done (the overview) ends the page: the codes are not shown again.
    await agent.get('/account/security');
    const after = await agent.get('/account/security/recovery-codes');
    expect(after.status).to.equal(303);
    expect(after.headers.location).to.equal('/account/security');
  });

  it('lets an account without a password (Google, bulk migration) turn it on after a recent login, without asking for a password it does not have', async () => {
    const account = await createAccount(server.registry);
    const agent = await signIn(account.email);
    await server.registry.db.query('UPDATE accounts SET password_hash = NULL WHERE id = $1', [account.id]);
    const page = await agent.get('/account/security');
    expect(page.text).to.contain('/account/security/two-step/start');
    expect(page.text, 'no password field').not.to.contain('id="on-password"');
    expect(page.text, 'a recent login: nothing to confirm').not.to.contain('Confirm it’s you');
    const start = await post(agent, '/account/security/two-step/start');
    expect(start.status).to.equal(200);
    expect(start.text).to.contain('id="manual-key"');

    // Later, the login is no longer recent: the page offers logging in again (by Google, for
    // such an account), never a password field.
    now += 11 * 60_000;
    const later = await agent.get('/account/security');
    expect(later.text).to.contain('Confirm it’s you').and.contain('with Google');
    expect(later.text).to.contain('href="/account/login?reauth=1&amp;next=%2Faccount%2Fsecurity"');
    expect(later.text).not.to.contain('id="on-password"');
    const refused = await post(agent, '/account/security/two-step/start');
    expect(refused.status).to.equal(403);
    expect(refused.text).to.contain('Confirm it’s you');
  });

  it('throttles password guesses made through the settings forms like login attempts', async () => {
    const account = await createAccount(server.registry);
    const agent = await signIn(account.email);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) statuses.push((await submit(agent, '/account/close', '/account/close', { password: `guess ${i}` })).status);
    expect(statuses).to.deep.equal([400, 400, 400, 400, 400, 429]);
    const email = await submit(agent, '/account/email', '/account/email', { email: 'x@example.com', password: PASSWORD });
    expect(email.status, 'even the right password waits').to.equal(429);
    expect(email.headers['retry-after']).to.be.a('string');
    expect((await server.registry.accounts.findById(account.id))?.status).to.equal('active');
  });

  it('does not offer turning it off when the account requires it', async () => {
    const account = await createAccount(server.registry);
    const { secret } = await turnOn(await signIn(account.email));
    await server.registry.twoStep.setRequired(account.id, true);
    // Required now: a session from a one-factor login no longer opens the settings (it is sent
    // to log in again); one with both factors does.
    now += 30_000;
    const { agent } = await signInToAccount(server.url, account.email, { code: () => totpAt(secret, now) });
    const page = await agent.get('/account/security');
    expect(page.text).to.contain('requires two-step verification');
    expect(page.text).not.to.contain('/account/security/two-step/disable');
  });

  it('refuses a POST turning it off when the account requires it, with the right password and code', async () => {
    const account = await createAccount(server.registry);
    const { secret } = await turnOn(await signIn(account.email));
    await server.registry.twoStep.setRequired(account.id, true);
    now += 30_000;
    const { agent } = await signInToAccount(server.url, account.email, { code: () => totpAt(secret, now) });
    await server.registry.mail.delivery.deliverDue();
    const before = (await server.registry.events.page(account.id, { limit: 50 })).events.length;
    const mailsBefore = smtp.messages.length;

    now += 30_000; // a fresh time step: the code itself is good
    const res = await post(agent, '/account/security/two-step/disable', { password: PASSWORD, code: await totpAt(secret, now) });
    expect(res.status).to.equal(403);
    expect(res.text).to.contain('Two-step verification is required');
    expect((await server.registry.twoStep.status(account.id)).enabled, 'the factor stays').to.equal(true);
    const after = (await server.registry.events.page(account.id, { limit: 50 })).events;
    expect(after.length, 'nothing added to the audit trail').to.equal(before);
    expect(after.map((e) => e.type)).not.to.include('two_step.disabled');
    await server.registry.mail.delivery.deliverDue();
    expect(smtp.messages.length, 'no "turned off" mail').to.equal(mailsBefore);

    // The service holds the rule too, for any other caller.
    const row = (await server.registry.accounts.findById(account.id))!;
    const direct = await server.registry.twoStep.disable(row, PASSWORD, await totpAt(secret, now + 30_000), {});
    expect(direct).to.deep.equal({ ok: false, problem: 'two_step.required' });
    expect((await server.registry.twoStep.status(account.id)).enabled).to.equal(true);
  });

  it('records each security event with time, account, client, address, browser and request id', async () => {
    const account = await createAccount(server.registry);
    const app = await createClient(server.registry, { name: 'Board Exporter', firstParty: false });
    const config = await oidc.discovery(new URL(server.url), app.clientId, app.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: app.redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    await new PageDriver(server.url).authorize(url.href, { email: account.email, password: PASSWORD });

    const wrong = await signInToAccount(server.url, account.email, { password: 'wrong', userAgent: UA });
    expect(wrong.status).to.equal(401);
    const agent = await signIn(account.email);
    await signIn(account.email); // a second browser
    // A proxy's request id is kept and recorded with the event.
    const apps = await agent.get('/account/apps');
    const revoked = await agent.post(`/account/apps/${app.clientId}/revoke`).set('X-Request-Id', 'trace-0123456789').type('form').send({ _csrf: csrfFrom(apps.text) });
    expect(revoked.status).to.equal(303);
    expect((await submit(agent, '/account/password', '/account/password', { current: PASSWORD, password: 'a different long passphrase' })).status).to.equal(303);
    expect((await submit(agent, '/account/sessions', '/account/sessions/end-others')).status).to.equal(303);

    const { events } = await server.registry.events.page(account.id, { limit: 50 });
    const types = events.map((e) => e.type).reverse();
    expect(types).to.deep.equal(['login.succeeded', 'login.failed', 'login.succeeded', 'login.succeeded', 'grant.revoked', 'password.changed', 'session.revoked']);
    const failed = events.find((e) => e.type === 'login.failed')!;
    expect(failed.reason).to.equal('wrong_password');
    expect(failed.clientId).to.equal('lanyard-account');
    expect(failed.ip).to.match(/127\.0\.0\.1/);
    expect(failed.userAgent).to.equal(UA);
    expect(failed.requestId).to.match(/^[0-9a-f-]{36}$/);
    expect(Date.parse(failed.at)).to.be.closeTo(now, 60_000);
    const grant = events.find((e) => e.type === 'grant.revoked')!;
    expect(grant.clientId).to.equal(app.clientId);
    expect(grant.requestId).to.equal('trace-0123456789');
    expect(events.at(-1)!.clientId).to.equal(app.clientId); // the first login was for the app

    const page = await agent.get('/account/security');
    // Apps by their names, not their ids.
    expect(page.text).to.contain('Failed login (wrong password) — Lanyard account settings');
    expect(page.text).to.contain('Logged in — Board Exporter').and.not.to.contain('— lanyard-account');
    expect(page.text).to.contain('Password changed');
    expect(page.text).to.contain('Chrome on Linux');
  });

  it('records logout, email change and account closure', async () => {
    const account = await createAccount(server.registry);
    const agent = await signIn(account.email);
    await submit(agent, '/account/email', '/account/email', { email: 'renamed@example.com', password: PASSWORD });
    await server.registry.mail.delivery.deliverDue();
    const verify = await smtp.lastTo('renamed@example.com');
    const link = /(http:\/\/127\.0\.0\.1:\d+\/account\/email\/verify\?token=\S+)/.exec(verify.text ?? '')![1]!;
    const asked = await agent.get(new URL(link).pathname + new URL(link).search);
    expect(asked.status).to.equal(200);
    expect((await agent.post('/account/email/verify').type('form').send({ _csrf: csrfFrom(asked.text), token: new URL(link).searchParams.get('token')! })).status).to.equal(303);

    // RP-initiated logout through the engine's pages.
    const confirm = await agent.get('/session/end');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.text)![1]!;
    expect((await agent.post('/session/end/confirm').type('form').send({ xsrf, logout: 'yes' })).status).to.be.oneOf([302, 303]);

    const again = await signIn('renamed@example.com');
    await submit(again, '/account/close', '/account/close', { password: PASSWORD });
    const types = (await server.registry.events.page(account.id, { limit: 50 })).events.map((e) => e.type).reverse();
    expect(types).to.deep.equal(['login.succeeded', 'email.changed', 'logout', 'login.succeeded', 'account.closed']);
  });

  it('serves the trail as JSON in pages, newest first, to the person only', async () => {
    const account = await createAccount(server.registry);
    const agent = await signIn(account.email);
    for (let i = 0; i < 24; i += 1) await server.registry.events.record({ type: 'login.failed', accountId: account.id, reason: 'wrong_password', detail: { n: i } }, {});
    const stranger = await createAccount(server.registry);
    await server.registry.events.record({ type: 'login.failed', accountId: stranger.id, reason: 'wrong_password' }, {});

    const seen: string[] = [];
    let cursor: string | null = null;
    const sizes: number[] = [];
    do {
      const res: supertest.Response = await agent.get(`/api/security-events?limit=10${cursor ? `&cursor=${cursor}` : ''}`).set('Accept', 'application/json');
      expect(res.status).to.equal(200);
      expect(res.headers['cache-control']).to.equal('no-store');
      sizes.push(res.body.events.length);
      seen.push(...res.body.events.map((e: { id: string }) => e.id));
      cursor = res.body.next;
    } while (cursor);
    expect(sizes).to.deep.equal([10, 10, 5]); // 24 recorded + the login
    expect(new Set(seen).size).to.equal(25);
    expect(seen.map(Number)).to.deep.equal([...seen.map(Number)].sort((x, y) => y - x));

    const first = await agent.get('/api/security-events?limit=1');
    expect(first.body.events[0]).to.include.keys('id', 'at', 'type', 'reason', 'clientId', 'ip', 'userAgent', 'requestId', 'detail');

    expect((await agent.get('/api/security-events?limit=0').set('Accept', 'application/json')).status).to.equal(400);
    expect((await agent.get('/api/security-events?limit=1000').set('Accept', 'application/json')).status).to.equal(400);
    expect((await agent.get('/api/security-events?cursor=abc').set('Accept', 'application/json')).status).to.equal(400);
    const anonymous = await supertest(server.url).get('/api/security-events').set('Accept', 'application/json');
    expect(anonymous.status).to.equal(401);
    expect(anonymous.body.error).to.equal('api.unauthenticated');
  });

  it('answers a first-party app’s bearer token and refuses a third party’s', async () => {
    const account = await createAccount(server.registry);
    const tokenFor = async (firstParty: boolean) => {
      const app = await createClient(server.registry, { firstParty });
      const config = await oidc.discovery(new URL(server.url), app.clientId, app.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: app.redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      const tokens = await oidc.authorizationCodeGrant(config, await new PageDriver(server.url).authorize(url.href, { email: account.email, password: PASSWORD }), { pkceCodeVerifier: verifier });
      return tokens.access_token;
    };
    const own = await supertest(server.url).get('/api/security-events').set('Authorization', `Bearer ${await tokenFor(true)}`);
    expect(own.status).to.equal(200);
    expect(own.body.events.length).to.be.greaterThan(0);
    const third = await supertest(server.url).get('/api/security-events').set('Authorization', `Bearer ${await tokenFor(false)}`).set('Accept', 'application/json');
    expect(third.status).to.equal(401);
  });

  it('is append-only: the database refuses to change a recorded event', async () => {
    const account = await createAccount(server.registry);
    await server.registry.events.record({ type: 'login.succeeded', accountId: account.id }, {});
    const db = await testDatabase();
    let refused: unknown;
    try {
      await db.query("UPDATE security_events SET type = 'nothing happened' WHERE account_id = $1", [account.id]);
    } catch (err) {
      refused = err;
    }
    expect(String((refused as Error)?.message)).to.contain('append-only');
    expect((await server.registry.events.page(account.id)).events[0]!.type).to.equal('login.succeeded');
  });
});
