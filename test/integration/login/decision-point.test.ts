import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom, followSteps } from '../../helpers/login-driver.ts';
import { startInteraction } from '../../helpers/authorization.ts';
import { startSmtp, type TestSmtp } from '../../helpers/smtp.ts';
import { importLegacy, legacyMember, TRELLO_PASSWORD } from '../../helpers/trello.ts';
import { ACR_TWO_FACTORS } from '../../../src/policy/levels.ts';

/**
 * Each login path asks the decision point (src/policy/) and acts on its answer: the account is
 * put in a state only the decision point refuses or redirects (two-step required in the
 * database, a status change, a linked Trello member, a relying party asking for two factors),
 * and the path's answer changes accordingly.
 */
describe('login paths consult the decision point', () => {
  let smtp: TestSmtp;
  let server: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;

  before(async () => {
    await resetDatabase();
    smtp = await startSmtp();
    server = await startTestServer({ overrides: { smtpUrl: smtp.url } });
    client = await createClient(server.registry, { firstParty: true, name: 'Jira' });
  });
  after(async () => {
    await server.close();
    await smtp.close();
  });

  async function identify(email: string, params: Record<string, string> = {}) {
    const agent = supertest.agent(server.url);
    const uid = await startInteraction(agent, client, params);
    const login = await agent.get(`/interaction/${uid}`);
    const res = await followSteps(agent, await agent.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(login.text), email }));
    return { agent, uid, res };
  }

  async function password(email: string, pw = PASSWORD, params: Record<string, string> = {}) {
    const flow = await identify(email, params);
    const res = await flow.agent.post(`/interaction/${flow.uid}/password`).type('form').send({ _csrf: csrfFrom(flow.res.text), email, password: pw });
    return { ...flow, res };
  }

  const strip = (html: string) => html.replace(/name="_csrf" value="[^"]+"/g, '').replace(/\/interaction\/[^/"]+/g, '').replace(/value="[^"]*@[^"]*"/g, '')
    // The address typed and this login's page, carried to "Forgot your password?" (the same differences as above).
    .replace(/\/password\/forgot\?[^"]*/g, '/password/forgot?');

  it('identifier step: an unknown address answers exactly like a password account, whatever state the account is in', async () => {
    const plain = await createAccount(server.registry, { email: 'plain@example.com' });
    const deactivated = await createAccount(server.registry, { email: 'gone@example.com' });
    await server.registry.db.query("UPDATE accounts SET status = 'deactivated' WHERE id = $1", [deactivated.id]);
    const required = await createAccount(server.registry, { email: 'required@example.com' });
    await server.registry.db.query('UPDATE accounts SET two_step_required = true WHERE id = $1', [required.id]);
    const answers = [];
    for (const email of [plain.email, 'nobody-at-all@example.com', deactivated.email, required.email]) answers.push((await identify(email)).res);
    for (const res of answers) {
      expect(res.status).to.equal(200);
      expect(res.text).to.contain('name="password"');
      expect(strip(res.text)).to.equal(strip(answers[0]!.text));
    }
  });

  it('identifier step: acts on the decision point’s answer (a required connector: straight to its login, no password page)', async () => {
    await createAccount(server.registry, { email: 'someone@acme.example' });
    const policy = server.registry.policy;
    const decide = policy.decide;
    // The decision point itself is made to answer so for an address on the company's domain (the
    // organizations' policies that lead to this answer: test/integration/sso).
    policy.decide = (input) => (input.stage === 'identify' && input.subject.kind === 'address' && input.subject.email.endsWith('@acme.example') ? { outcome: 'use_connector', connector: 'acme', manager: 'Acme' } : decide(input));
    try {
      for (const email of ['someone@acme.example', 'nobody-yet@acme.example']) {
        const sent = await identify(email);
        expect(sent.res.status, email).to.equal(303);
        expect(sent.res.headers.location).to.equal(`/interaction/${sent.uid}/sso/acme?login_hint=${encodeURIComponent(email)}`);
        expect(sent.res.text).not.to.contain('name="password"');
      }
      // An address on another domain is not the subject of that answer: the password page.
      expect((await identify('someone-else@example.com')).res.text).to.contain('name="password"');
    } finally {
      policy.decide = decide;
    }
  });

  it('password: two-step verification required in the database sends the right password to enrolment', async () => {
    const account = await createAccount(server.registry, { email: 'must-enrol@example.com' });
    const before = await password(account.email);
    expect(before.res.status).to.equal(303);
    expect(before.res.headers.location).to.match(/[?&]code=/);
    await server.registry.db.query('UPDATE accounts SET two_step_required = true WHERE id = $1', [account.id]);
    const after = await password(account.email);
    expect(after.res.status).to.equal(303);
    expect(after.res.headers.location).to.equal(`/interaction/${after.uid}/two-step/enrol`);
  });

  it('password: a relying party asking for two factors (acr_values) sends the right password to enrolment', async () => {
    const account = await createAccount(server.registry, { email: 'asked-2fa@example.com' });
    const flow = await password(account.email, PASSWORD, { acr_values: ACR_TWO_FACTORS });
    expect(flow.res.status).to.equal(303);
    expect(flow.res.headers.location).to.equal(`/interaction/${flow.uid}/two-step/enrol`);
  });

  it('password: a deactivated account is refused after the right password; a closed one past its grace period too', async () => {
    const account = await createAccount(server.registry, { email: 'status@example.com' });
    await server.registry.db.query("UPDATE accounts SET status = 'deactivated' WHERE id = $1", [account.id]);
    const deactivated = await password(account.email);
    expect(deactivated.res.status).to.equal(403);
    expect(deactivated.res.text).to.contain('This account can’t sign in');
    await server.registry.db.query("UPDATE accounts SET status = 'closed', closed_at = now() - interval '30 days', delete_after = now() - interval '1 day' WHERE id = $1", [account.id]);
    const closed = await password(account.email);
    expect(closed.res.status).to.equal(403);
    expect((await server.registry.accounts.findById(account.id))?.status).to.equal('closed');
  });

  it('Trello password: the linked member’s old password is refused by the decision point, and a deactivated account first', async () => {
    const member = legacyMember();
    await importLegacy(server.registry, [member]);
    const email = member.emails[0]!.address;
    // The member's Trello password at its address: review, then linked with the address kept.
    const first = await password(email, TRELLO_PASSWORD);
    expect(first.res.headers.location).to.equal(`/interaction/${first.uid}/trello/review`);
    const review = await first.agent.get(first.res.headers.location!);
    const linked = await first.agent.post(`/interaction/${first.uid}/trello/review`).type('form').send({ _csrf: csrfFrom(review.text), email });
    expect(linked.status).to.equal(303);
    const account = await server.registry.accounts.findByEmail(email);
    // Its password is now the account's own: the Trello password of a linked member is
    // answered by name only when it differs from the account's. Give the account another one.
    await server.registry.db.query('UPDATE accounts SET password_hash = $2 WHERE id = $1', [account!.id, await server.registry.hasher.hash('a new password of the account')]);
    const retired = await password(email, TRELLO_PASSWORD);
    expect(retired.res.status).to.equal(401);
    expect(retired.res.text).to.contain('Your Trello password no longer works');
    // Deactivated: the decision point answers that before anything about the method.
    await server.registry.db.query("UPDATE accounts SET status = 'deactivated' WHERE id = $1", [account!.id]);
    const inactive = await password(email, TRELLO_PASSWORD);
    expect(inactive.res.status).to.equal(403);
    expect(inactive.res.text).to.contain('This account can’t sign in');
  });

  it('email recovery: a member a Trello Enterprise manages may not prove another address; one without may', async () => {
    const managed = legacyMember({ enterprise: { id: 'ent_1', name: 'Acme Trello' } });
    const free = legacyMember();
    await importLegacy(server.registry, [managed, free]);
    for (const [member, status] of [[managed, 403], [free, 200]] as const) {
      const flow = await password(member.emails[0]!.address, TRELLO_PASSWORD);
      expect(flow.res.headers.location).to.equal(`/interaction/${flow.uid}/trello/review`);
      const page = await flow.agent.get(`/interaction/${flow.uid}/trello/change-email`);
      expect(page.status).to.equal(status);
      if (status === 403) expect(page.text).to.contain('Acme Trello');
      else expect(page.text).to.contain('name="email"');
    }
  });

  it('sign-up’s end: the new account’s login goes through the decision point (two factors asked for → enrolment)', async () => {
    const agent = supertest.agent(server.url);
    const uid = await startInteraction(agent, client, { acr_values: ACR_TWO_FACTORS });
    const start = await agent.get(`/interaction/${uid}/signup`);
    await agent.post(`/interaction/${uid}/signup`).type('form').send({ _csrf: csrfFrom(start.text), email: 'fresh@example.com' });
    await server.registry.background.idle();
    await server.registry.mail.delivery.deliverDue();
    const code = /^\s+(\d{6})\s*$/m.exec((await smtp.lastTo('fresh@example.com')).text ?? '')?.[1];
    const verified = await agent.post(`/interaction/${uid}/signup/code`).type('form').send({ _csrf: csrfFrom(start.text), code });
    expect(verified.status).to.equal(303);
    const done = await agent.post(`/interaction/${uid}/signup/details`).type('form').send({ _csrf: csrfFrom(start.text), name: 'Fresh', password: 'a long enough passphrase' });
    expect(done.status).to.equal(303);
    expect(done.headers.location).to.equal(`/interaction/${uid}/two-step/enrol`);
  });
});
