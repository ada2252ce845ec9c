import { expect } from 'chai';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { startSmtp, type TestSmtp } from '../../helpers/smtp.ts';
import { signInToAccount, submit, type Agent } from '../../helpers/account-pages.ts';
import type { Clock } from '../../../src/shared/clock.ts';
import { importLegacy, legacyMember } from '../../helpers/trello.ts';
import { enrolTwoStep, passPassword, totpAt } from '../../helpers/two-step.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';


describe('closing an account (/account/close)', () => {
  let smtp: TestSmtp;
  let server: TestServer;
  let now = Date.now();
  const clock: Clock = { now: () => now };

  beforeEach(async () => {
    await resetDatabase();
    now = Date.now();
    smtp = await startSmtp();
    server = await startTestServer({ clock, overrides: { smtpUrl: smtp.url } });
  });
  afterEach(async () => {
    await server.close();
    await smtp.close();
  });

  const signIn = (email: string, password = PASSWORD) => signInToAccount(server.url, email, { password });
  const close = (agent: Agent, password: string) => submit(agent, '/account/close', '/account/close', { password });

  it('requires the password, then closes at once and signs out everywhere', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signIn(account.email);
    const other = (await signIn(account.email)).agent;
    const wrong = await close(agent, 'not my password');
    expect(wrong.status).to.equal(400);
    expect(wrong.text).to.contain('Your current password is not right');

    const posted = await close(agent, PASSWORD);
    expect([posted.status, posted.headers.location]).to.deep.equal([303, '/account/closed']);
    const closed = await agent.get('/account/closed');
    expect(closed.status).to.equal(200);
    expect(closed.text).to.contain('Your account is closed');
    expect((await agent.get('/account')).status).to.equal(303);
    expect((await other.get('/account')).status).to.equal(303);
    expect((await server.registry.accounts.findById(account.id))?.status).to.equal('closed');
    await server.registry.mail.delivery.deliverDue();
    expect((await smtp.lastTo(account.email)).subject).to.equal('Your Lanyard account was closed');
  });

  it('reopens the account when its owner logs in during the grace period', async () => {
    const account = await createAccount(server.registry);
    await close((await signIn(account.email)).agent, PASSWORD);
    now += 13 * 86_400_000;
    expect((await signIn(account.email, 'wrong password')).status, 'a wrong password does not reopen').to.equal(401);
    const { status } = await signIn(account.email);
    expect(status).to.equal(200);
    const row = await server.registry.accounts.findById(account.id);
    expect(row).to.include({ status: 'active', closed_at: null, delete_after: null });
    // Not undone silently: the owner is mailed, and the security activity says so.
    await server.registry.mail.delivery.deliverDue();
    const notice = await smtp.lastTo(account.email);
    expect(notice.subject).to.equal('Your Lanyard account was reopened');
    expect(notice.text).to.contain('its closure cancelled').and.to.contain('/password/forgot');
    const { rows } = await server.registry.db.query<{ type: string }>("SELECT type FROM security_events WHERE account_id = $1 AND type = 'account.reopened'", [account.id]);
    expect(rows).to.have.length(1);
  });

  it('reopens an account with two-step verification only once the second step is passed', async () => {
    const account = await createAccount(server.registry);
    const { secret } = await enrolTwoStep(server.registry, account);
    await server.registry.accountClosure.close(account.id, PASSWORD);
    now += 86_400_000;
    const client = await createClient(server.registry, { firstParty: true });
    const flow = await passPassword(server.url, client, account.email);
    expect(flow.page.text).to.contain('Two-step verification');
    expect((await server.registry.accounts.findById(account.id))?.status, 'the password alone does not reopen').to.equal('closed');
    const done = await flow.agent.post(`/interaction/${flow.uid}/two-step`).type('form').send({ _csrf: csrfFrom(flow.page.text), code: await totpAt(secret, now) });
    expect(done.status).to.equal(303);
    expect((await server.registry.accounts.findById(account.id))?.status).to.equal('active');
  });

  it('erases personal data after the grace period and frees the address', async () => {
    const account = await createAccount(server.registry, { name: 'To Be Erased' });
    await close((await signIn(account.email)).agent, PASSWORD);
    expect(await server.registry.accountClosure.eraseDue()).to.deep.equal([]);
    now += 14 * 86_400_000 + 1000;
    expect(await server.registry.accountClosure.eraseDue()).to.deep.equal([account.id]);
    const row = await server.registry.accounts.findById(account.id);
    expect(row).to.include({ email: `erased:${account.id}`, name: null, password_hash: null, status: 'closed' });
    expect((await signIn(account.email)).status, 'no login after erasure').to.equal(401);
    const again = await createAccount(server.registry, { email: account.email });
    expect(again.id, 'a new account gets a new id').not.to.equal(account.id);
  });

  it('erases what the Trello migration and Google attached: identities, retired addresses, the member’s personal data', async () => {
    const member = legacyMember({ fullName: 'Linked Person', emails: [{ address: 'linked@example.com', verified: true, primary: true }, { address: 'retired@example.com', verified: true }], google: { sub: 'g-erase', email: 'linked@gmail.com' } });
    await importLegacy(server.registry, [member]);
    const linked = await server.registry.trello.linking.link({ memberId: member.id, email: 'linked@example.com', method: 'password', passwordHash: await server.registry.hasher.hash(PASSWORD) });
    if (!linked.ok) throw new Error(linked.problem);
    await close((await signIn('linked@example.com')).agent, PASSWORD);
    now += 14 * 86_400_000 + 1000;
    expect(await server.registry.accountClosure.eraseDue()).to.deep.equal([linked.account.id]);
    expect(await server.registry.accountIdentities.findIdentity('google', 'g-erase')).to.equal(undefined);
    expect(await server.registry.trello.linking.findRetired('retired@example.com'), 'the retired address is released').to.equal(undefined);
    const stored = await server.registry.trello.linking.findByMemberId(member.id);
    expect(stored).to.include({ full_name: null, password_hash: null, google_email: null, username: `erased:${member.id}` });
    expect(stored?.emails).to.deep.equal([]);
  });
});
