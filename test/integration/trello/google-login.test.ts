import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient } from '../../helpers/factories.ts';
import { startInteraction } from '../../helpers/authorization.ts';
import { startSmtp, type TestSmtp } from '../../helpers/smtp.ts';
import { startUpstreamIdp, type UpstreamUser } from '../../helpers/upstream-idp.ts';
import { importLegacy, legacyMember } from '../../helpers/trello.ts';
import { enrolTwoStep } from '../../helpers/two-step.ts';

describe('"Continue with Google" against a real local OpenID provider', () => {
  let smtp: TestSmtp;
  let upstream: Awaited<ReturnType<typeof startUpstreamIdp>>;
  let server: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;

  beforeEach(async () => {
    await resetDatabase();
    smtp = await startSmtp();
    upstream = await startUpstreamIdp();
    server = await startTestServer({ overrides: { smtpUrl: smtp.url, google: { issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret } } });
    upstream.configure(`${server.url}/login/google/callback`);
    client = await createClient(server.registry, { firstParty: true, name: 'Trello' });
  });
  afterEach(async () => {
    await server.close();
    await upstream.close();
    await smtp.close();
  });

  /**
   * Clicks "Continue with Google" in a fresh login and follows every redirect across both
   * servers, each with its own cookies, until a page is shown or the client's callback is reached.
   */
  async function googleLogin(user: UpstreamUser | undefined, params: Record<string, string> = {}) {
    if (user) upstream.signInAs(user);
    else upstream.cancelNext();
    const lanyard = supertest.agent(server.url);
    const google = supertest.agent(upstream.issuer);
    const uid = await startInteraction(lanyard, client, params);
    const page = await lanyard.get(`/interaction/${uid}`);
    expect(page.text).to.contain(`href="/interaction/${uid}/google"`);
    let location = `${server.url}/interaction/${uid}/google`;
    for (let i = 0; i < 20; i += 1) {
      const url = new URL(location);
      if (url.origin === new URL(client.redirectUri).origin) return { callback: url, uid, agent: lanyard };
      const agent = url.origin === server.url ? lanyard : google;
      const res = await agent.get(url.pathname + url.search);
      if (![302, 303].includes(res.status)) return { page: res, uid, agent: lanyard };
      location = new URL(res.headers.location!, url).href;
    }
    throw new Error('too many redirects');
  }

  it('creates an account for a new Google user with a verified address and logs in', async () => {
    const result = await googleLogin({ sub: 'g-new', email: 'New.Person@gmail.com', email_verified: true, name: 'New Person' });
    expect(result.callback?.searchParams.get('code')).to.be.a('string');
    const account = await server.registry.accounts.findByEmail('new.person@gmail.com');
    expect(account).to.include({ email_verified: true, name: 'New Person', password_hash: null });
    expect(await server.registry.accountIdentities.findIdentity('google', 'g-new')).to.deep.equal({ account_id: account!.id });
    // Next time the subject alone finds it, even if the address changed at Google.
    const again = await googleLogin({ sub: 'g-new', email: 'renamed@gmail.com', email_verified: true });
    expect(again.callback?.searchParams.get('code')).to.be.a('string');
    expect(await server.registry.accounts.findByEmail('renamed@gmail.com')).to.equal(undefined);
  });

  it('passes the relying party’s max_age to Google, and refuses a Google sign-in older than it', async () => {
    const user = { sub: 'g-aged', email: 'aged@gmail.com', email_verified: true };
    expect((await googleLogin(user)).callback, 'no max_age: Google’s session answers').to.not.equal(undefined);
    expect(upstream.requests.at(-1)!.get('max_age')).to.equal(null);
    expect((await googleLogin(user, { max_age: '300' })).callback?.searchParams.get('code')).to.be.a('string');
    expect(upstream.requests.at(-1)!.get('max_age')).to.equal('300');
    expect(upstream.requests.at(-1)!.get('prompt'), 'Google refuses prompt=login').to.equal(null);
    upstream.staleNext(3600);
    const stale = await googleLogin(user, { max_age: '300' });
    expect(stale.page?.status).to.equal(401);
    expect(stale.page?.text).to.contain('The app asked for a recent sign-in, and Google answered from an older one');
  });

  it('links to the existing account with Google’s verified address', async () => {
    const existing = await createAccount(server.registry, { email: 'ada@gmail.com' });
    const result = await googleLogin({ sub: 'g-ada', email: 'ada@gmail.com', email_verified: true });
    expect(result.callback).to.not.equal(undefined);
    expect(await server.registry.accountIdentities.findIdentity('google', 'g-ada')).to.deep.equal({ account_id: existing.id });
  });

  it('never links or creates with an unverified Google address', async () => {
    await createAccount(server.registry, { email: 'victim@example.com' });
    const result = await googleLogin({ sub: 'g-evil', email: 'victim@example.com', email_verified: false });
    expect(result.page?.status).to.equal(409);
    expect(result.page?.text).to.contain('Google hasn’t verified this address');
    expect(await server.registry.accountIdentities.findIdentity('google', 'g-evil')).to.equal(undefined);
  });

  it('migrates a Trello member with this Google subject automatically, without questions', async () => {
    const member = legacyMember({
      emails: [{ address: 'grace@acme.example', verified: true, primary: true }, { address: 'grace.h@example.org', verified: true }],
      google: { sub: 'g-grace', email: 'grace.hopper@gmail.com' },
    });
    await importLegacy(server.registry, [member]);
    const result = await googleLogin({ sub: 'g-grace', email: 'grace.hopper@gmail.com', email_verified: true });
    expect(result.callback?.searchParams.get('code')).to.be.a('string');
    const stored = await server.registry.trello.linking.findByMemberId(member.id);
    expect(stored?.linked_by).to.equal('google');
    const account = await server.registry.accounts.findById(stored!.linked_account_id!);
    expect(account?.email).to.equal('grace@acme.example');
    expect(await server.registry.trello.linking.retiredOf(account!.id)).to.deep.equal(['grace.h@example.org']);
    expect(await server.registry.accountIdentities.findIdentity('google', 'g-grace')).to.deep.equal({ account_id: account!.id });
  });

  it('migrates a Trello member whose address Google verified, even without a stored Google link', async () => {
    const member = legacyMember({ emails: [{ address: 'linus@example.com', verified: true, primary: true }] });
    await importLegacy(server.registry, [member]);
    const result = await googleLogin({ sub: 'g-linus', email: 'linus@example.com', email_verified: true });
    expect(result.callback).to.not.equal(undefined);
    expect((await server.registry.trello.linking.findByMemberId(member.id))?.linked_by).to.equal('google');
  });

  it('does not take an unverified Trello address, or an unverified account address, as proof', async () => {
    // The attacker's legacy member lists the victim's address, unverified at Trello.
    const attacker = legacyMember({ emails: [{ address: 'attacker@example.com', verified: true, primary: true }, { address: 'victim@gmail.com', verified: false }], google: { sub: 'g-attacker', email: 'attacker@gmail.com' } });
    await importLegacy(server.registry, [attacker]);
    const victim = await googleLogin({ sub: 'g-victim', email: 'victim@gmail.com', email_verified: true });
    expect(victim.callback).to.not.equal(undefined);
    expect((await server.registry.trello.linking.findByMemberId(attacker.id))?.linked_account_id, 'the attacker’s member stays unlinked').to.equal(null);
    const account = await server.registry.accounts.findByEmail('victim@gmail.com');
    expect(await server.registry.accountIdentities.findIdentity('google', 'g-attacker')).to.equal(undefined);
    expect(account?.id).to.be.a('string');

    // An account whose address was never verified here is not linked by Google either.
    await server.registry.accounts.create({ email: 'unverified-here@example.com', password: 'some long password', emailVerified: false });
    const other = await googleLogin({ sub: 'g-other', email: 'unverified-here@example.com', email_verified: true });
    expect(other.page?.status).to.equal(409);
    expect(await server.registry.accountIdentities.findIdentity('google', 'g-other')).to.equal(undefined);
  });

  it('does not link a Trello member for good to an account with two-step verification before its code', async () => {
    const alice = await createAccount(server.registry, { email: 'alice@corp.example' });
    await enrolTwoStep(server.registry, alice);
    const member = legacyMember({ emails: [{ address: 'alice-trello@corp.example', verified: true, primary: true }], google: { sub: 'g-corp-admin', email: 'alice@corp.example' } });
    await importLegacy(server.registry, [member]);
    const result = await googleLogin({ sub: 'g-corp-admin', email: 'alice@corp.example', email_verified: true });
    expect(result.page?.status).to.equal(409);
    expect(result.page?.text).to.contain('Log in with your password and code first');
    expect((await server.registry.trello.linking.findByMemberId(member.id))?.linked_account_id).to.equal(null);
  });

  it('asks for the second step after Google when two-step verification is on', async () => {
    const existing = await createAccount(server.registry, { email: 'careful@gmail.com' });
    await enrolTwoStep(server.registry, existing);
    const result = await googleLogin({ sub: 'g-careful', email: 'careful@gmail.com', email_verified: true });
    expect(result.page?.status).to.equal(200);
    expect(result.page?.text).to.contain('Two-step verification');
  });

  it('asks the decision point after Google: a deactivated account is refused, one with two-step required enrols', async () => {
    const gone = await createAccount(server.registry, { email: 'gone@gmail.com' });
    await server.registry.db.query("UPDATE accounts SET status = 'deactivated', email_verified = true WHERE id = $1", [gone.id]);
    const refused = await googleLogin({ sub: 'g-gone', email: 'gone@gmail.com', email_verified: true });
    expect(refused.page?.status).to.equal(403);
    expect(refused.page?.text).to.contain('This account can’t sign in');
    expect(refused.callback).to.equal(undefined);
    // Nothing was attached to the deactivated account.
    expect((await server.registry.db.query('SELECT 1 FROM account_identities WHERE account_id = $1', [gone.id])).rows).to.deep.equal([]);

    const required = await createAccount(server.registry, { email: 'required@gmail.com' });
    await server.registry.db.query('UPDATE accounts SET two_step_required = true, email_verified = true WHERE id = $1', [required.id]);
    const enrol = await googleLogin({ sub: 'g-required', email: 'required@gmail.com', email_verified: true });
    expect(enrol.page?.status).to.equal(200);
    expect(enrol.page?.text).to.contain('Set up two-step verification');
  });

  it('does not log in with a retired address and notifies the account', async () => {
    const member = legacyMember({ emails: [{ address: 'now@example.com', verified: true, primary: true }, { address: 'then@gmail.com', verified: true }] });
    await importLegacy(server.registry, [member]);
    await server.registry.trello.linking.link({ memberId: member.id, email: 'now@example.com', method: 'bulk' });
    const result = await googleLogin({ sub: 'g-then', email: 'then@gmail.com', email_verified: true });
    expect(result.page?.status).to.equal(200);
    expect(result.page?.text).to.contain('Check your email');
    await server.registry.mail.delivery.deliverDue();
    expect((await smtp.lastTo('now@example.com')).subject).to.equal('Log in to Lanyard with now@example.com');
  });

  it('comes back with a clear page when the person cancels at Google, and refuses a forged callback', async () => {
    const cancelled = await googleLogin(undefined);
    expect(cancelled.page?.text).to.contain('Google login was cancelled');
    const forged = await supertest(server.url).get('/login/google/callback?code=abc&state=forged');
    expect(forged.status).to.equal(400);
  });
});
