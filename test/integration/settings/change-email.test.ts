import { expect } from 'chai';
import { csrfFrom } from '../../helpers/login-driver.ts';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, PASSWORD } from '../../helpers/factories.ts';
import { startSmtp, linkIn, type TestSmtp } from '../../helpers/smtp.ts';
import { signInToAccount, submit } from '../../helpers/account-pages.ts';

describe('changing the email address (/account/email)', () => {
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

  const deliver = async () => {
    await server.registry.mail.delivery.deliverDue();
  };

  it('changes the address only after the new one is verified, tells the old one, and retires it for login', async () => {
    const account = await createAccount(server.registry, { email: 'old@example.com' });
    const { agent } = await signInToAccount(server.url, account.email);
    // A refused address is marked on its field, for assistive technology.
    const invalid = (html: string) => [...html.matchAll(/<input id="(\w+)"[^>]*aria-invalid="true"/g)].map((m) => m[1]);
    for (const email of ['not an address', 'old@example.com']) {
      const refused = await submit(agent, '/account/email', '/account/email', { email, password: PASSWORD });
      expect(refused.status, email).to.equal(400);
      expect(invalid(refused.text), email).to.deep.equal(['email']);
    }
    const sent = await submit(agent, '/account/email', '/account/email', { email: 'New@Example.com', password: PASSWORD });
    expect(sent.status).to.equal(303);
    expect((await agent.get('/account/email')).text).to.contain('Check new@example.com');
    expect((await server.registry.accounts.findById(account.id))?.email, 'nothing changes before verification').to.equal('old@example.com');

    await deliver();
    const link = linkIn(await smtp.lastTo('new@example.com'), `${server.url}/account/email/verify?token=`);
    // Opening the link (what a mail scanner does too) only asks.
    const browser = supertest.agent(server.url);
    const asked = await browser.get(new URL(link).pathname + new URL(link).search);
    expect(asked.status).to.equal(200);
    expect(asked.text).to.contain('Change the address of your account to <strong>new@example.com</strong>?');
    expect((await server.registry.accounts.findById(account.id))?.email, 'opening the link changes nothing').to.equal('old@example.com');
    expect((await browser.get(new URL(link).pathname + new URL(link).search)).status, 'and may be opened again').to.equal(200);
    // The button, with the page's CSRF token, does it; without the token nothing happens.
    const token = new URL(link).searchParams.get('token')!;
    expect((await supertest(server.url).post('/account/email/verify').type('form').send({ token })).status).to.equal(403);
    const posted = await browser.post('/account/email/verify').type('form').send({ _csrf: csrfFrom(asked.text), token });
    // Post/Redirect/Get: the outcome has a page of its own, which a reload shows again.
    expect(posted.status).to.equal(303);
    expect(posted.headers.location).to.equal('/account/email/changed');
    const confirmed = await browser.get('/account/email/changed');
    expect(confirmed.status).to.equal(200);
    expect(confirmed.text).to.contain('new@example.com');
    expect((await browser.get('/account/email/changed')).text, 'a reload says the same, not “has not changed”').to.equal(confirmed.text);
    const elsewhere = await supertest(server.url).get('/account/email/changed');
    expect([elsewhere.status, elsewhere.headers.location], 'nothing to show without the outcome').to.deep.equal([303, '/account/email']);
    expect((await server.registry.accounts.findById(account.id))?.email).to.equal('new@example.com');

    await deliver();
    const notice = await smtp.lastTo('old@example.com');
    expect(notice.subject).to.equal('Your Lanyard email address was changed');
    expect(notice.text).to.contain('new@example.com');
    expect((await server.registry.accounts.authenticate('old@example.com', PASSWORD)).ok).to.equal(false);
    expect((await server.registry.accounts.authenticate('new@example.com', PASSWORD)).ok).to.equal(true);
    expect((await supertest(server.url).get(new URL(link).pathname + new URL(link).search)).status, 'the link works once').to.equal(400);
    expect((await browser.post('/account/email/verify').type('form').send({ _csrf: csrfFrom(asked.text), token })).status, 'and its button too').to.equal(400);
  });

  it('requires the current password', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const res = await submit(agent, '/account/email', '/account/email', { email: 'other@example.com', password: 'wrong password' });
    expect(res.status).to.equal(400);
    expect(res.text).to.contain('Your current password is not right');
    await deliver();
    expect(smtp.messages).to.have.length(0);
  });

  it('does not reveal on the page that the new address has an account', async () => {
    await createAccount(server.registry, { email: 'taken@example.com' });
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const res = await submit(agent, '/account/email', '/account/email', { email: 'taken@example.com', password: PASSWORD });
    expect(res.status).to.equal(303);
    expect((await agent.get('/account/email')).text).to.contain('Check taken@example.com');
    await deliver();
    const notice = await smtp.lastTo('taken@example.com');
    expect(notice.subject).to.equal('This address already has a Lanyard account');
    // An address change, not a sign-up: the mail says what was tried.
    expect(notice.text).to.contain('asked to move a Lanyard account to taken@example.com');
    expect(notice.text).not.to.contain('create');
  });

  it('refuses the change when the address was registered between request and confirmation', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    await submit(agent, '/account/email', '/account/email', { email: 'race@example.com', password: PASSWORD });
    await deliver();
    const link = linkIn(await smtp.lastTo('race@example.com'), `${server.url}/account/email/verify?token=`);
    const browser = supertest.agent(server.url);
    const asked = await browser.get(new URL(link).pathname + new URL(link).search);
    await createAccount(server.registry, { email: 'race@example.com' });
    const res = await browser.post('/account/email/verify').type('form').send({ _csrf: csrfFrom(asked.text), token: new URL(link).searchParams.get('token')! });
    expect(res.status).to.equal(400);
    expect(res.text).to.contain('already has an account');
    expect((await server.registry.accounts.findById(account.id))?.email).to.equal(account.email);
  });
});
