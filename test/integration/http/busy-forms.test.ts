import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { startInteraction } from '../../helpers/authorization.ts';
import { startSmtp, linkIn, type TestSmtp } from '../../helpers/smtp.ts';
import { signInToAccount, submit } from '../../helpers/account-pages.ts';
import { enrolTwoStep, totpAt } from '../../helpers/two-step.ts';
import { attemptsCounted, expectBusyForm, refuseHashes } from '../../helpers/busy.ts';

/**
 * Decision 0063: every form that checks or hashes a password answers a full password hashing the
 * way the login's password step does (decision 0061) — 503 with Retry-After, the same form again
 * with what was typed except the passwords, nothing stored and no throttle attempt counted — and
 * the same form sent again once there is room goes through.
 */
describe('forms that hash a password, while the hashing is full', () => {
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

  /** Sends `post` while every refusable hash is refused; the refusal must have happened. */
  async function whileFull(post: () => Promise<supertest.Response>): Promise<supertest.Response> {
    const refusing = refuseHashes(server.registry);
    try {
      const res = await post();
      expect(refusing.refused(), 'the form asked for no hash: the test proves nothing').to.be.greaterThan(0);
      return res;
    } finally {
      refusing.restore();
    }
  }

  it('sign-up: the details form again with the name kept, no account created; sent again, the account is made', async () => {
    const client = await createClient(server.registry, { firstParty: true });
    const agent = supertest.agent(server.url);
    const uid = await startInteraction(agent, client);
    const form = await agent.get(`/interaction/${uid}/signup`);
    await agent.post(`/interaction/${uid}/signup`).type('form').send({ _csrf: csrfFrom(form.text), email: 'newcomer@example.com' });
    await server.registry.background.idle();
    await server.registry.mail.delivery.deliverDue();
    const code = /^\s+(\d{6})\s*$/m.exec((await smtp.lastTo('newcomer@example.com')).text ?? '')![1]!;
    const verified = await agent.post(`/interaction/${uid}/signup/code`).type('form').send({ _csrf: csrfFrom(form.text), code });
    expect(verified.status).to.equal(303);
    const details = await agent.get(verified.headers.location!);
    const password = 'violet harbour lantern 7731';

    const busy = await whileFull(() => agent.post(`/interaction/${uid}/signup/details`).type('form').send({ _csrf: csrfFrom(details.text), name: 'New Comer', password }));
    expectBusyForm(busy, { action: `/interaction/${uid}/signup/details`, kept: ['New Comer'], passwords: [password] });
    expect(await server.registry.accounts.findByEmail('newcomer@example.com')).to.equal(undefined);

    const again = await agent.post(`/interaction/${uid}/signup/details`).type('form').send({ _csrf: csrfFrom(busy.text), name: 'New Comer', password });
    expect(again.status, again.text.slice(0, 300)).to.equal(303);
    expect((await server.registry.accounts.authenticate('newcomer@example.com', password)).ok).to.equal(true);
  });

  it('password reset: the new-password form again with its link still usable; sent again, the password is changed', async () => {
    const account = await createAccount(server.registry);
    const agent = supertest.agent(server.url);
    const forgot = await agent.get('/password/forgot');
    await agent.post('/password/forgot').type('form').send({ _csrf: csrfFrom(forgot.text), email: account.email });
    await server.registry.background.idle();
    await server.registry.mail.delivery.deliverDue();
    const link = new URL(linkIn(await smtp.lastTo(account.email), `${server.url}/password/reset?token=`));
    const token = link.searchParams.get('token')!;
    const form = await agent.get(link.pathname + link.search);
    const password = 'the reset passphrase 4410';

    const busy = await whileFull(() => agent.post('/password/reset').type('form').send({ _csrf: csrfFrom(form.text), token, password }));
    expectBusyForm(busy, { action: '/password/reset', kept: [token], passwords: [password] });
    expect((await server.registry.accounts.authenticate(account.email, PASSWORD)).ok, 'the old password still works').to.equal(true);

    const again = await agent.post('/password/reset').type('form').redirects(1).send({ _csrf: csrfFrom(busy.text), token, password });
    expect(again.status).to.equal(200);
    expect(again.text).to.contain('Your password was changed');
    expect((await server.registry.accounts.authenticate(account.email, password)).ok).to.equal(true);
  });

  it('settings: changing the password with the current one answers busy, counts no attempt, and goes through when sent again', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const before = await attemptsCounted();
    const password = 'a changed passphrase 5120';

    const busy = await whileFull(() => submit(agent, '/account/password', '/account/password', { current: PASSWORD, password }));
    expectBusyForm(busy, { action: '/account/password', passwords: [PASSWORD, password] });
    expect(await attemptsCounted(), 'the attempt reserved for the check was given back').to.equal(before);
    expect((await server.registry.accounts.authenticate(account.email, PASSWORD)).ok).to.equal(true);

    const again = await agent.post('/account/password').type('form').send({ _csrf: csrfFrom(busy.text), current: PASSWORD, password });
    expect(again.status).to.equal(303);
    expect((await server.registry.accounts.authenticate(account.email, password)).ok).to.equal(true);
  });

  it('settings: a password change confirmed by a recent login alone (nothing typed to check) answers busy too', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const password = 'a fresh-login passphrase 6282';

    // Without a current password there is no check before the new password's hash: that hash is
    // the step's first, so it must be refusable (not a never-refused second hash).
    const busy = await whileFull(() => submit(agent, '/account/password', '/account/password', { password }));
    expectBusyForm(busy, { action: '/account/password', passwords: [password] });
    expect((await server.registry.accounts.authenticate(account.email, PASSWORD)).ok, 'the password is unchanged').to.equal(true);

    const again = await agent.post('/account/password').type('form').send({ _csrf: csrfFrom(busy.text), password });
    expect(again.status, again.text.slice(0, 300)).to.equal(303);
    expect((await server.registry.accounts.authenticate(account.email, password)).ok).to.equal(true);
  });

  it('settings: an email change and closing the account, confirmed with the password, answer busy and change nothing', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const before = await attemptsCounted();

    const email = await whileFull(() => submit(agent, '/account/email', '/account/email', { password: PASSWORD, email: 'elsewhere@example.com' }));
    expectBusyForm(email, { action: '/account/email', kept: ['elsewhere@example.com'], passwords: [PASSWORD] });
    expect((await server.registry.emailChanges.pending(account.id)), 'no change requested').to.equal(undefined);

    const close = await whileFull(() => submit(agent, '/account/close', '/account/close', { password: PASSWORD }));
    expectBusyForm(close, { action: '/account/close', passwords: [PASSWORD] });
    expect((await server.registry.accounts.findById(account.id))?.status).to.equal('active');
    expect(await attemptsCounted(), 'no attempt counted').to.equal(before);
  });

  it('settings: turning two-step verification off answers busy and gives both attempts back', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const { secret } = await enrolTwoStep(server.registry, account);
    const before = await attemptsCounted();

    const busy = await whileFull(() => submit(agent, '/account/security', '/account/security/two-step/disable', { password: PASSWORD, code: '000000' }));
    expectBusyForm(busy, { action: '/account/security/two-step/disable', passwords: [PASSWORD] });
    expect((await server.registry.twoStep.status(account.id)).enabled).to.equal(true);
    expect(await attemptsCounted(), 'neither the password’s nor the code’s attempt stays counted').to.equal(before);

    const off = await agent.post('/account/security/two-step/disable').type('form').send({ _csrf: csrfFrom(busy.text), password: PASSWORD, code: await totpAt(secret, Date.now() + 30_000) });
    expect(off.status).to.equal(303);
    expect((await server.registry.twoStep.status(account.id)).enabled).to.equal(false);
  });
});
