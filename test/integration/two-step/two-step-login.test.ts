import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import { createAccount, createClient } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { linkIn, startSmtp, type TestSmtp } from '../../helpers/smtp.ts';
import { enrolTwoStep, followToCallback, passPassword, totpAt } from '../../helpers/two-step.ts';
import type { Clock } from '../../../src/shared/clock.ts';

describe('two-step verification at login (/interaction/:uid/two-step)', () => {
  let smtp: TestSmtp;
  let server: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;
  // Mid-step, so ±1 step lands in neighbouring steps, never on a boundary.
  let now = Math.floor(Date.now() / 30_000) * 30_000 + 15_000;
  const clock: Clock = { now: () => now };

  beforeEach(async () => {
    await resetDatabase();
    now = Math.floor(Date.now() / 30_000) * 30_000 + 15_000;
    smtp = await startSmtp();
    server = await startTestServer({ clock, overrides: { smtpUrl: smtp.url } });
    client = await createClient(server.registry, { firstParty: true, name: 'Jira' });
  });
  afterEach(async () => {
    await server.close();
    await smtp.close();
  });

  async function submitCode(flow: Awaited<ReturnType<typeof passPassword>>, code: string) {
    return flow.agent.post(`/interaction/${flow.uid}/two-step`).type('form').send({ _csrf: csrfFrom(flow.page.text), code });
  }

  async function events(accountId: string) {
    return (await server.registry.events.page(accountId, { limit: 100 })).events;
  }

  it('asks for the code after the password and continues to the client with amr pwd+otp+mfa', async () => {
    const account = await createAccount(server.registry);
    const { secret } = await enrolTwoStep(server.registry, account);
    now += 30_000; // the enrolment used this step's code
    const flow = await passPassword(server.url, client, account.email);
    // The code page is a GET of its own (Post/Redirect/Get): a reload shows it again.
    expect(flow.posted.status).to.equal(303);
    expect(flow.posted.headers.location).to.equal(`/interaction/${flow.uid}/two-step`);
    expect(flow.page.status).to.equal(200);
    expect(flow.page.text).to.contain('Two-step verification');
    expect(flow.page.text).to.contain('autocomplete="one-time-code"');
    expect((await flow.agent.get(`/interaction/${flow.uid}/two-step`)).text, 'a reload').to.contain('autocomplete="one-time-code"');

    const done = await submitCode(flow, await totpAt(secret, now));
    expect(done.status).to.equal(303);
    const callback = await followToCallback(flow.agent, server.url, done.headers.location!);
    expect(callback.searchParams.get('code')).to.be.a('string');
    const login = (await events(account.id)).find((e) => e.type === 'login.succeeded');
    expect(login?.detail).to.deep.equal({ amr: ['pwd', 'otp', 'mfa'] });
    expect(login?.clientId).to.equal(client.clientId);
  });

  it('ends a login waiting at its second step when the password is reset meanwhile', async () => {
    const account = await createAccount(server.registry);
    const { secret } = await enrolTwoStep(server.registry, account);
    now += 30_000;
    const flow = await passPassword(server.url, client, account.email);
    expect(flow.page.text).to.contain('autocomplete="one-time-code"');
    // The owner, elsewhere, resets the password: whoever was past the old one goes no further.
    expect(await server.registry.passwordResets.request(account.email)).to.equal(true);
    await server.registry.mail.delivery.deliverDue();
    const token = new URL(linkIn(await smtp.lastTo(account.email), `${server.url}/password/reset?token=`)).searchParams.get('token')!;
    expect((await server.registry.passwordResets.reset(token, 'an entirely new passphrase')).ok).to.equal(true);
    const done = await submitCode(flow, await totpAt(secret, now));
    expect(done.status).to.equal(400);
    expect(done.text).to.contain('Start again');
  });

  it('does not finish the login on the engine’s resume endpoint while the second step is pending', async () => {
    const account = await createAccount(server.registry);
    await enrolTwoStep(server.registry, account);
    const flow = await passPassword(server.url, client, account.email);
    expect(flow.page.status).to.equal(200);
    // The engine's resume URL for this interaction: without a result it must not log anyone in.
    const resume = await flow.agent.get(`/auth/${flow.uid}`);
    expect(resume.headers.location ?? '').not.to.match(/[?&]code=/);
    expect((await events(account.id)).some((e) => e.type === 'login.succeeded')).to.equal(false);
  });

  it('accepts the previous and the next time step, refuses two steps away', async () => {
    const account = await createAccount(server.registry);
    const { secret } = await enrolTwoStep(server.registry, account);
    now += 10 * 30_000;
    const tooOld = await passPassword(server.url, client, account.email);
    expect((await submitCode(tooOld, await totpAt(secret, now - 60_000))).status).to.equal(401);
    const previous = await passPassword(server.url, client, account.email);
    expect((await submitCode(previous, await totpAt(secret, now - 30_000))).status).to.equal(303);
    now += 30_000;
    const next = await passPassword(server.url, client, account.email);
    expect((await submitCode(next, await totpAt(secret, now + 30_000))).status).to.equal(303);
  });

  it('refuses a code that was already used, within its window and across instances', async () => {
    const account = await createAccount(server.registry);
    const { secret } = await enrolTwoStep(server.registry, account);
    now += 30_000;
    const code = await totpAt(secret, now);
    const first = await passPassword(server.url, client, account.email);
    expect((await submitCode(first, code)).status).to.equal(303);

    const second = await passPassword(server.url, client, account.email);
    const replay = await submitCode(second, code);
    expect(replay.status).to.equal(401);
    // Refused, but the person is told why: wait for the next code, rather than "wrong code".
    expect(replay.text).to.contain('That code was already used');
    expect(replay.text).not.to.contain('That code isn’t right');
    // A code that is simply wrong still says so.
    const wrong = await submitCode(await passPassword(server.url, client, account.email), code === '000000' ? '111111' : '000000');
    expect(wrong.text).to.contain('That code isn’t right');

    // A second instance on the same database refuses it too.
    const other = await startTestServer({ clock, overrides: { smtpUrl: smtp.url } });
    try {
      const third = await passPassword(other.url, client, account.email);
      expect((await submitCode(third, code)).status).to.equal(401);
      // Nor is an older step accepted once a newer one was used.
      expect((await submitCode(third, await totpAt(secret, now - 30_000))).status).to.equal(401);
    } finally {
      await other.close();
    }
    const failures = (await events(account.id)).filter((e) => e.type === 'login.failed');
    expect(failures.map((e) => e.reason)).to.include('second_step_failed');
  });

  it('lets two racing requests with one code succeed once only', async () => {
    const account = await createAccount(server.registry);
    const { secret } = await enrolTwoStep(server.registry, account);
    now += 30_000;
    const code = await totpAt(secret, now);
    const results = await Promise.all([1, 2, 3].map(() => server.registry.twoStep.verify(account, code, {})));
    expect(results.filter((r) => r.ok)).to.have.length(1);
  });

  it('takes a recovery code in place of the app’s code, spends it, and emails the owner', async () => {
    const account = await createAccount(server.registry);
    const { recoveryCodes } = await enrolTwoStep(server.registry, account);
    expect(recoveryCodes).to.have.length(10);
    expect(new Set(recoveryCodes).size).to.equal(10);
    const code = recoveryCodes[3]!;

    const flow = await passPassword(server.url, client, account.email);
    const done = await submitCode(flow, code.toUpperCase().replace('-', ' '));
    expect(done.status).to.equal(303);
    const login = (await events(account.id)).find((e) => e.type === 'login.succeeded');
    expect(login?.detail).to.deep.equal({ amr: ['pwd', 'mfa'] });
    expect((await events(account.id)).find((e) => e.type === 'recovery_code.used')?.detail).to.deep.equal({ remaining: 9 });

    await server.registry.mail.delivery.deliverDue();
    const mail = await smtp.lastTo(account.email, 'A recovery code was used to sign in to your Lanyard account');
    expect(mail.text).to.contain('9 unused recovery codes left');

    const again = await passPassword(server.url, client, account.email);
    expect((await submitCode(again, code)).status).to.equal(401);
  });

  it('refuses every code once all ten recovery codes are spent, until a new set is made', async () => {
    const account = await createAccount(server.registry);
    const { recoveryCodes } = await enrolTwoStep(server.registry, account);
    for (const code of recoveryCodes) expect((await server.registry.twoStep.verify(account, code, {})).ok).to.equal(true);
    expect(await server.registry.twoStep.status(account.id)).to.include({ enabled: true, recoveryCodesLeft: 0 });
    for (const code of recoveryCodes) expect(await server.registry.twoStep.verify(account, code, {})).to.deep.equal({ ok: false, problem: 'two_step.code_invalid' });

    const fresh = await server.registry.twoStep.regenerateRecoveryCodes(account, {});
    expect(fresh).to.have.length(10);
    expect(fresh!.some((c) => recoveryCodes.includes(c))).to.equal(false);
    const flow = await passPassword(server.url, client, account.email);
    expect((await submitCode(flow, fresh![0]!)).status).to.equal(303);
  });

  it('invalidates the old recovery codes when new ones are made', async () => {
    const account = await createAccount(server.registry);
    const { recoveryCodes } = await enrolTwoStep(server.registry, account);
    await server.registry.twoStep.regenerateRecoveryCodes(account, {});
    expect((await server.registry.twoStep.verify(account, recoveryCodes[0]!, {})).ok).to.equal(false);
    expect((await server.registry.twoStep.status(account.id)).recoveryCodesLeft).to.equal(10);
  });

  it('keeps the TOTP secret sealed at rest and recovery codes only as hashes', async () => {
    const account = await createAccount(server.registry);
    const { secret, recoveryCodes } = await enrolTwoStep(server.registry, account);
    const db = await testDatabase();
    const { rows } = await db.query<{ secret_sealed: string }>('SELECT secret_sealed FROM totp_factors WHERE account_id = $1', [account.id]);
    expect(rows[0]!.secret_sealed).to.match(/^v2\./);
    expect(rows[0]!.secret_sealed).not.to.contain(secret);
    const codes = await db.query<{ code_hash: string }>('SELECT code_hash FROM recovery_codes WHERE account_id = $1', [account.id]);
    expect(codes.rows).to.have.length(10);
    const stored = codes.rows.map((r) => r.code_hash).join(' ');
    for (const code of recoveryCodes) expect(stored).not.to.contain(code.replace('-', ''));
  });

  it('asks an account that requires two-step verification to set it up before continuing', async () => {
    const account = await createAccount(server.registry);
    await server.registry.twoStep.setRequired(account.id, true);
    const flow = await passPassword(server.url, client, account.email);
    expect(flow.page.status).to.equal(303);
    expect(flow.page.headers.location).to.equal(`/interaction/${flow.uid}/two-step/enrol`);

    const enrol = await flow.agent.get(flow.page.headers.location!);
    expect(enrol.status).to.equal(200);
    expect(enrol.text).to.contain('<svg');
    const secret = /id="manual-key" class="key">([A-Z2-7 ]+)</.exec(enrol.text)![1]!.replace(/ /g, '');

    const wrong = await flow.agent.post(`/interaction/${flow.uid}/two-step/enrol`).type('form').send({ _csrf: csrfFrom(enrol.text), code: '000000' });
    expect(wrong.status).to.equal(400);
    expect(wrong.text).to.contain(secret.slice(0, 4)); // the same key is shown again

    // Post/Redirect/Get: the codes have a page of their own, which a reload or Back shows again.
    const confirmed = await flow.agent.post(`/interaction/${flow.uid}/two-step/enrol`).type('form').send({ _csrf: csrfFrom(enrol.text), code: await totpAt(secret, now) });
    expect(confirmed.status).to.equal(303);
    expect(confirmed.headers.location).to.equal(`/interaction/${flow.uid}/two-step/codes`);
    const codes = await flow.agent.get(confirmed.headers.location!);
    expect(codes.status).to.equal(200);
    const shown = codes.text.match(/<li><code>[a-z2-9]{5}-[a-z2-9]{5}<\/code><\/li>/g);
    expect(shown).to.have.length(10);
    expect(codes.text).to.contain('download="lanyard-recovery-codes.txt"');
    expect((await flow.agent.get(confirmed.headers.location!)).text.match(/<li><code>[a-z2-9]{5}-[a-z2-9]{5}<\/code><\/li>/g), 'a reload shows the same codes').to.deep.equal(shown);
    const back = await flow.agent.get(`/interaction/${flow.uid}/two-step/enrol`);
    expect(back.status, 'Back to the set-up page').to.equal(303);
    expect(back.headers.location).to.equal(`/interaction/${flow.uid}/two-step/codes`);
    // Sent again (the browser's "resubmit" of the set-up page, or of the mistyped code's page
    // reached with Back): the step is over, and the codes are what is left to see — not "start again".
    for (const code of [await totpAt(secret, now), '000000']) {
      const again = await flow.agent.post(`/interaction/${flow.uid}/two-step/enrol`).type('form').send({ _csrf: csrfFrom(enrol.text), code });
      expect(again.status).to.equal(303);
      expect(again.headers.location).to.equal(`/interaction/${flow.uid}/two-step/codes`);
    }
    // In another browser session of the same interaction (no sealed codes): the codes are not shown again.
    const elsewhere = await supertest(server.url).get(confirmed.headers.location!).set('Cookie', (flow.agent as unknown as { jar: { getCookies(o: object): { name: string; value: string }[] } }).jar
      .getCookies({ domain: '127.0.0.1', path: `/interaction/${flow.uid}/two-step/codes`, secure: false, script: false })
      .filter((c) => c.name !== 'lanyard.login_codes').map((c) => `${c.name}=${c.value}`).join('; '));
    expect(elsewhere.status).to.equal(200);
    expect(elsewhere.text).to.contain('are not shown again');
    expect(elsewhere.text).not.to.match(/<li><code>/);

    const done = await flow.agent.post(`/interaction/${flow.uid}/two-step/continue`).type('form').send({ _csrf: csrfFrom(codes.text) });
    expect(done.status).to.equal(303);
    const callback = await followToCallback(flow.agent, server.url, done.headers.location!);
    expect(callback.searchParams.get('code')).to.be.a('string');
    expect((await server.registry.twoStep.status(account.id)).enabled).to.equal(true);
  });

  it('keeps the pending second step on the server, keyed by a hash of its interaction, and reachable from that interaction only', async () => {
    const account = await createAccount(server.registry);
    const { secret } = await enrolTwoStep(server.registry, account);
    now += 30_000; // the enrolment used this step's code
    const first = await passPassword(server.url, client, account.email);
    expect(first.page.text).to.contain('Two-step verification');
    // Nothing about the first factor travels in a cookie (decision 0026): the flow record holds it.
    const setCookies = ([] as string[]).concat(first.page.headers['set-cookie'] ?? []);
    expect(setCookies.filter((c) => c.startsWith('lanyard.login_pending'))).to.deep.equal([]);
    const { rows } = await server.registry.db.query<{ uid_hash: string; step: string; account_id: string; amr: string[] }>('SELECT uid_hash, step, account_id, amr FROM login_flows WHERE account_id = $1', [account.id]);
    expect(rows).to.have.length(1);
    expect(rows[0]).to.include({ step: 'second_factor', account_id: account.id });
    expect(rows[0]!.amr).to.deep.equal(['pwd']);
    expect(rows[0]!.uid_hash).not.to.contain(first.uid);
    // Another interaction, carrying every cookie the first one was given, has no second step pending.
    const other = await passPassword(server.url, client, 'nobody@example.com');
    const carried = setCookies.map((c) => c.split(';')[0]!).filter((c) => !c.startsWith('_interaction'));
    const res = await other.agent.post(`/interaction/${other.uid}/two-step`).set('Cookie', carried.join('; ')).type('form').send({ _csrf: csrfFrom(other.page.text), code: await totpAt(secret, now) });
    expect(res.status).to.equal(400);
    expect(res.text).to.contain('Start again');
    // The first interaction finishes with its code, and its flow record goes with it.
    const done = await submitCode(first, await totpAt(secret, now));
    expect(done.status).to.equal(303);
    expect((await server.registry.db.query('SELECT 1 FROM login_flows WHERE account_id = $1', [account.id])).rows).to.deep.equal([]);
  });

  it('refuses the continue step before enrolment is confirmed, and a forged pending cookie', async () => {
    const account = await createAccount(server.registry);
    await server.registry.twoStep.setRequired(account.id, true);
    const flow = await passPassword(server.url, client, account.email);
    const enrol = await flow.agent.get(`/interaction/${flow.uid}/two-step/enrol`);
    const skip = await flow.agent.post(`/interaction/${flow.uid}/two-step/continue`).type('form').send({ _csrf: csrfFrom(enrol.text) });
    expect(skip.status).to.equal(400);
    expect(skip.text).to.contain('Start again');

    const other = await passPassword(server.url, client, 'nobody@example.com');
    const forged = Buffer.from(JSON.stringify({ accountId: account.id, amr: ['pwd'], stage: 'enrolled', exp: 9e9 })).toString('base64url');
    const res = await other.agent.post(`/interaction/${other.uid}/two-step/continue`)
      .set('Cookie', `lanyard.login_pending=${forged}`).type('form').send({ _csrf: csrfFrom(other.page.text) });
    expect(res.status).to.equal(400);
  });
});
