import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { startSmtp, linkIn, type TestSmtp } from '../../helpers/smtp.ts';

/**
 * Password reset asks the decision point (`reset_request`, `reset_complete`): what only it looks
 * at — the account's status set after the fact, whether the account has a password — changes what
 * the paths do, while the request page stays the same for every address (no enumeration).
 */
describe('password reset consults the decision point', () => {
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
  const mailsTo = (email: string) => smtp.messages.filter((m) => JSON.stringify(m.to).includes(email)).length;
  const setStatus = (id: string, status: string) => server.registry.db.query('UPDATE accounts SET status = $2 WHERE id = $1', [id, status]);
  /** The page without what legitimately differs: the address typed and the CSRF token. */
  const shape = (text: string, email: string) => text.replaceAll(email, 'EMAIL').replace(/name="_csrf" value="[^"]+"/g, '');

  it('sends a link to an account its owner closed and can still reopen, and none once the grace period is over', async () => {
    const closed = await createAccount(server.registry, { email: 'closed@example.com' });
    const past = await createAccount(server.registry, { email: 'past@example.com' });
    await server.registry.db.query(`UPDATE accounts SET status = 'closed', closed_at = now(), delete_after = now() + interval '7 days' WHERE id = $1`, [closed.id]);
    await server.registry.db.query(`UPDATE accounts SET status = 'closed', closed_at = now() - interval '15 days', delete_after = now() - interval '1 day' WHERE id = $1`, [past.id]);
    await requestReset(closed.email);
    await requestReset(past.email);
    expect(mailsTo(closed.email), 'within the grace period: the login after the reset reopens it').to.equal(1);
    expect(mailsTo(past.email), 'past the grace period').to.equal(0);
  });

  it('sends no link to a deactivated account, with the same page an active account gets; a password-less account still gets one', async () => {
    const active = await createAccount(server.registry, { email: 'active@example.com' });
    const off = await createAccount(server.registry, { email: 'off@example.com' });
    const googleOnly = await createAccount(server.registry, { email: 'google-only@example.com' });
    await setStatus(off.id, 'deactivated');
    await server.registry.db.query('UPDATE accounts SET password_hash = NULL WHERE id = $1', [googleOnly.id]);

    const a = await requestReset(active.email);
    const d = await requestReset(off.email);
    const g = await requestReset(googleOnly.email);
    expect(d.res.status).to.equal(a.res.status);
    expect(shape(d.res.text, off.email)).to.equal(shape(a.res.text, active.email));
    expect(mailsTo(active.email)).to.equal(1);
    expect(mailsTo(off.email), 'nothing for the deactivated account').to.equal(0);
    expect(mailsTo(googleOnly.email), 'a Google account may set a password this way').to.equal(1);

    // Reactivated, the same account gets its link: the status, read by the decision point, made the difference.
    await setStatus(off.id, 'active');
    await requestReset(off.email);
    expect(mailsTo(off.email)).to.equal(1);
  });

  it('sets no password through a link followed after the account was deactivated, and says why', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await requestReset(account.email);
    const link = linkIn(await smtp.lastTo(account.email), `${server.url}/password/reset?token=`);
    const token = new URL(link).searchParams.get('token')!;
    const form = await agent.get(`/password/reset?token=${token}`);
    expect(form.status).to.equal(200);

    await setStatus(account.id, 'deactivated');
    const page = await agent.get(`/password/reset?token=${token}`);
    expect(page.status).to.equal(403);
    expect(page.text).to.contain('This account can’t sign in').and.contain('sets no password');
    const post = await agent.post('/password/reset').type('form').send({ _csrf: csrfFrom(form.text), token, password: 'a password set too late' });
    expect(post.status).to.equal(403);
    await setStatus(account.id, 'active');
    expect((await server.registry.accounts.authenticate(account.email, PASSWORD)).ok, 'the password is unchanged').to.equal(true);
    // The link was not spent: once the account is usable again, it works.
    const later = await agent.get(`/password/reset?token=${token}`);
    expect(later.status).to.equal(200);
  });
});
