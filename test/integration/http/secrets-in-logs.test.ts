import { expect } from 'chai';
import supertest from 'supertest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createClient } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { submit, type Agent } from '../../helpers/account-pages.ts';
import { followToCallback, passPassword, totpAt } from '../../helpers/two-step.ts';
import { captureLogs, type CapturedLogs } from '../../helpers/log-capture.ts';
import type { Clock } from '../../../src/shared/clock.ts';

const PASSWORD = 'first passphrase of the run';
const NEW_PASSWORD = 'second passphrase after reset';
const CLIENT_SECRET = 'client-secret-never-logged-0123456789abcdef';

/**
 * One full run of an instance with the development mailbox, its logs captured at debug level:
 * sign-up with a code, token issuance with a client secret, refresh, two-step enrolment, logins
 * with a TOTP code and with a recovery code, a password reset by its link, and each secret also
 * replayed where it is refused. No secret may appear in the logs, in mail_outbox.subject, or in
 * any error page or error response of the run.
 */
describe('secrets never reach logs, outbox subjects or error pages', () => {
  let server: TestServer;
  let logs: CapturedLogs;
  let now = Math.floor(Date.now() / 30_000) * 30_000 + 15_000;
  const clock: Clock = { now: () => now };
  const secrets = new Map<string, string>();
  const errorBodies: string[] = [];

  const keep = (name: string, value: string | undefined) => {
    expect(value, name).to.be.a('string').with.length.greaterThan(5);
    secrets.set(name, value!);
  };
  /** Records a refused answer's body for the scan, and returns the response. */
  const refused = <R extends { status: number; text: string }>(res: R): R => {
    expect(res.status, res.text.slice(0, 200)).to.be.within(400, 499);
    errorBodies.push(res.text);
    return res;
  };
  const mailbox = () => server.registry.mail.devMailbox!.messages();
  const deliver = async () => {
    await server.registry.background.idle();
    await server.registry.mail.delivery.deliverDue();
  };

  before(async () => {
    await resetDatabase();
    logs = captureLogs('debug');
    server = await startTestServer({ clock, logger: logs.logger, overrides: { devMailbox: true } });
    keep('client secret', CLIENT_SECRET);
    keep('password', PASSWORD);
    keep('new password', NEW_PASSWORD);
  });
  after(async () => server.close());

  it('runs every flow that handles a secret, then finds none of them anywhere', async () => {
    const client = await createClient(server.registry, { firstParty: true, clientSecret: CLIENT_SECRET });
    const config = await oidc.discovery(new URL(server.url), client.clientId, CLIENT_SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
    const email = 'secret.keeper@example.com';

    // Sign-up with the emailed code, then tokens for the client with its secret.
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: client.redirectUri, scope: 'openid email profile offline_access', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'st' });
    const browser = supertest.agent(server.url);
    const uid = /\/interaction\/([^/?]+)/.exec((await browser.get(url.pathname + url.search)).headers.location!)![1]!;
    const signUp = await browser.get(`/interaction/${uid}/signup`);
    await browser.post(`/interaction/${uid}/signup`).type('form').send({ _csrf: csrfFrom(signUp.text), email });
    await deliver();
    const verification = mailbox().find((m) => m.subject.startsWith('Your Lanyard verification code'))!.text;
    const code = /^\s+(\d{6})\s*$/m.exec(verification)![1]!;
    keep('sign-up code', code);
    keep('sign-up link token', /[?&]token=([^\s&]+)/.exec(verification)?.[1]);
    refused(await browser.post(`/interaction/${uid}/signup/code`).type('form').send({ _csrf: csrfFrom(signUp.text), code: code === '000000' ? '111111' : '000000' }));
    const verified = await browser.post(`/interaction/${uid}/signup/code`).type('form').send({ _csrf: csrfFrom(signUp.text), code });
    expect(verified.status).to.equal(303);
    const details = await browser.post(`/interaction/${uid}/signup/details`).type('form').send({ _csrf: csrfFrom(signUp.text), name: 'Secret Keeper', password: PASSWORD });
    expect(details.status, details.text.slice(0, 200)).to.equal(303);
    const callback = await followToCallback(browser, server.url, details.headers.location!);
    keep('authorization code', callback.searchParams.get('code') ?? undefined);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: 'st' });
    keep('access token', tokens.access_token);
    keep('refresh token', tokens.refresh_token);
    keep('ID token', tokens.id_token);
    refused(await supertest(server.url).post('/token').type('form').auth(client.clientId, `${CLIENT_SECRET}x`).send({ grant_type: 'client_credentials' }));
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    keep('rotated refresh token', refreshed.refresh_token);
    keep('refreshed access token', refreshed.access_token);
    expect((await supertest(server.url).get('/me').set('authorization', `Bearer ${refreshed.access_token}`)).status).to.equal(200);
    // A rotated refresh token replayed is refused (and revokes the grant: RFC 9700 §4.14.2).
    refused(await supertest(server.url).post('/token').type('form').auth(client.clientId, CLIENT_SECRET).send({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }));
    // Replaying the code is refused too (RFC 6749 §4.1.2).
    const replayedCode = await supertest(server.url).post('/token').type('form').auth(client.clientId, CLIENT_SECRET)
      .send({ grant_type: 'authorization_code', code: secrets.get('authorization code'), redirect_uri: client.redirectUri, code_verifier: verifier });
    refused(replayedCode);

    // Password login, then two-step enrolment in the settings.
    const login = await passPassword(server.url, client, email, PASSWORD);
    expect(login.page.status).to.equal(303);
    const settings: Agent = login.agent;
    expect((await settings.get('/account')).status).to.be.oneOf([200, 302, 303]);
    const signedIn = await signInSettings(settings, email);
    const start = await submit(signedIn, '/account/security', '/account/security/two-step/start', { password: PASSWORD });
    const totpSecret = /id="manual-key" class="key">([A-Z2-7 ]+)</.exec(start.text)![1]!.replace(/ /g, '');
    keep('TOTP secret', totpSecret);
    // A wrong first code answers the enrolment page again (400), which shows its owner the secret
    // being enrolled by design — the QR code, the key, the otpauth:// link — and nothing else of
    // it is an error page: the scan takes it without that one secret.
    const wrongCode = await signedIn.post('/account/security/two-step/confirm').type('form').send({ _csrf: csrfFrom(start.text), code: '000000' });
    expect(wrongCode.status).to.equal(400);
    expect(wrongCode.text).to.contain('id="manual-key"');
    refused({ status: wrongCode.status, text: wrongCode.text.replaceAll(totpSecret, '').replace(/id="manual-key" class="key">[A-Z2-7 ]+</, '') });
    const enrolCode = await totpAt(totpSecret, now);
    keep('TOTP code at enrolment', enrolCode);
    const confirmedPost = await signedIn.post('/account/security/two-step/confirm').type('form').send({ _csrf: csrfFrom(start.text), code: enrolCode });
    const enrolled = await signedIn.get(confirmedPost.headers.location!);
    const recoveryCodes = enrolled.text.match(/(?<=<li><code>)[a-z2-9]{5}-[a-z2-9]{5}(?=<\/code><\/li>)/g)!;
    expect(recoveryCodes).to.have.length(10);
    recoveryCodes.forEach((c, i) => keep(`recovery code ${i + 1}`, c));

    // Logins with a TOTP code and with a recovery code; each replayed where it is refused.
    now += 30_000;
    const withTotp = await passPassword(server.url, client, email, PASSWORD);
    const totp = await totpAt(totpSecret, now);
    keep('TOTP code at login', totp);
    const totpDone = await withTotp.agent.post(`/interaction/${withTotp.uid}/two-step`).type('form').send({ _csrf: csrfFrom(withTotp.page.text), code: totp });
    expect(totpDone.status).to.equal(303);
    now += 30_000;
    const withRecovery = await passPassword(server.url, client, email, PASSWORD);
    const recoveryDone = await withRecovery.agent.post(`/interaction/${withRecovery.uid}/two-step`).type('form').send({ _csrf: csrfFrom(withRecovery.page.text), code: recoveryCodes[0] });
    expect(recoveryDone.status).to.equal(303);
    const replay = await passPassword(server.url, client, email, PASSWORD);
    refused(await replay.agent.post(`/interaction/${replay.uid}/two-step`).type('form').send({ _csrf: csrfFrom(replay.page.text), code: recoveryCodes[0] }));
    refused((await passPassword(server.url, client, 'nobody@example.com', PASSWORD)).page);

    // Password reset by its link; the used link replayed.
    const forgot = supertest.agent(server.url);
    const forgotPage = await forgot.get('/password/forgot');
    await forgot.post('/password/forgot').type('form').send({ _csrf: csrfFrom(forgotPage.text), email });
    await deliver();
    const resetLink = /(http:\/\/\S+\/password\/reset\?token=\S+)/.exec(mailbox().find((m) => m.subject === 'Reset your Lanyard password')!.text)![1]!;
    const resetToken = new URL(resetLink).searchParams.get('token')!;
    keep('reset token', resetToken);
    const resetPage = await forgot.get(`/password/reset?token=${encodeURIComponent(resetToken)}`);
    const reset = await forgot.post('/password/reset').type('form').send({ _csrf: csrfFrom(resetPage.text), token: resetToken, password: NEW_PASSWORD });
    expect(reset.status, reset.text.slice(0, 200)).to.be.oneOf([200, 303]);
    refused(await forgot.get(`/password/reset?token=${encodeURIComponent(resetToken)}`));
    refused(await forgot.post('/password/reset').type('form').send({ _csrf: csrfFrom(resetPage.text), token: resetToken, password: NEW_PASSWORD }));

    // The development mailbox page is for people; its log lines are what is scanned.
    expect((await supertest(server.url).get('/dev/mailbox')).status).to.equal(200);
    await deliver();

    // Browser cookies are secrets too: sessions, interactions, sealed flow state.
    for (const agent of [browser, settings, forgot, withTotp.agent]) {
      for (const c of await agent.jar.getCookies({ domain: '127.0.0.1', path: '/', secure: false, script: false })) {
        if (c.value.length >= 16) keep(`cookie ${c.name}`, c.value);
      }
    }

    const logText = logs.lines.join('\n');
    expect(logs.lines.length, 'the run was logged at debug level').to.be.greaterThan(50);
    expect(logText, 'the development mailbox logged its deliveries').to.contain('development mailbox');
    const { rows } = await server.registry.db.query<{ subject: string }>('SELECT subject FROM mail_outbox');
    expect(rows.length).to.be.greaterThan(3);
    const subjects = rows.map((r) => r.subject).join('\n');
    const errors = errorBodies.join('\n');
    expect(errorBodies.length).to.be.greaterThan(8);

    // A secret made only of digits (a six-digit code) counts where it stands alone, not inside a
    // longer number: every millisecond timestamp in the logs holds eight six-digit runs, so a
    // plain substring search matched a code by chance now and then (seen once in CI).
    const appears = (text: string, form: string) => (/^\d+$/.test(form) ? new RegExp(`(?<!\\d)${form}(?!\\d)`).test(text) : text.includes(form));
    const found: string[] = [];
    for (const [name, value] of secrets) {
      for (const form of new Set([value, encodeURIComponent(value)])) {
        if (appears(logText, form)) found.push(`${name} in the logs`);
        if (appears(subjects, form)) found.push(`${name} in an outbox subject`);
        if (appears(errors, form)) found.push(`${name} in an error response`);
      }
    }
    expect(found, `${secrets.size} secrets checked`).to.deep.equal([]);
  });

  /** After a password login in `agent`, opens the settings (one more sign-in step if asked). */
  async function signInSettings(agent: Agent, email: string): Promise<Agent> {
    let location = '/account';
    for (let step = 0; step < 12; step += 1) {
      const res = await agent.get(location);
      if (res.status === 302 || res.status === 303) {
        location = res.headers.location!.replace(server.url, '');
        continue;
      }
      if (location === '/account') return agent;
      const uid = /\/interaction\/([^/?]+)/.exec(location)![1]!;
      const identify = await agent.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(res.text), email }).redirects(1);
      const done = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(identify.text), email, password: PASSWORD });
      location = done.headers.location!.replace(server.url, '');
    }
    throw new Error('did not reach /account');
  }
});
