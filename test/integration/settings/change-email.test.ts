import { expect } from 'chai';
import { csrfFrom } from '../../helpers/login-driver.ts';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { startSmtp, linkIn, type TestSmtp } from '../../helpers/smtp.ts';
import { signInToAccount, submit } from '../../helpers/account-pages.ts';
import { enrolTwoStep, passPassword } from '../../helpers/two-step.ts';
import { importLegacy, legacyMember } from '../../helpers/trello.ts';
import { verifiedDomain } from '../../helpers/sso.ts';

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

  describe('undoing a change from the old address ("this wasn’t me", decision 0085)', () => {
    /** The intruder's change, made through the pages in their signed-in browser; returns it and the old address's notice. */
    async function intruderChanges(email: string, to: string, signIn: Parameters<typeof signInToAccount>[2] = {}) {
      const intruder = await signInToAccount(server.url, email, signIn);
      expect(intruder.status).to.equal(200);
      await submit(intruder.agent, '/account/email', '/account/email', { email: to, password: PASSWORD });
      await deliver();
      const link = linkIn(await smtp.lastTo(to), `${server.url}/account/email/verify?token=`);
      const asked = await intruder.agent.get(new URL(link).pathname + new URL(link).search);
      const posted = await intruder.agent.post('/account/email/verify').type('form').send({ _csrf: csrfFrom(asked.text), token: new URL(link).searchParams.get('token')! });
      expect(posted.status).to.equal(303);
      await deliver();
      const notice = await smtp.lastTo(email);
      expect(notice.subject).to.equal('Your Lanyard email address was changed');
      return { intruder: intruder.agent, undoLink: linkIn(notice, `${server.url}/account/email/undo?token=`) };
    }
    const pathOf = (link: string) => new URL(link).pathname + new URL(link).search;

    it('puts the old address back and locks the intruder out: sessions, password, an authenticator and a Google login added since', async () => {
      const account = await createAccount(server.registry, { email: 'owner@example.com' });
      const { intruder, undoLink } = await intruderChanges('owner@example.com', 'intruder@evil.example');
      // What the intruder added after the change, to come back with.
      const changed = await server.registry.accounts.findById(account.id);
      await enrolTwoStep(server.registry, changed!);
      await server.registry.db.query("INSERT INTO account_identities (provider, subject, account_id, email, created_at) VALUES ('google', 'intruder-sub', $1, 'intruder@evil.example', now())", [account.id]);
      expect((await intruder.get('/account')).status, 'the intruder is signed in').to.equal(200);

      // Opening the link (a mail scanner does too) only asks.
      const owner = supertest.agent(server.url);
      const asked = await owner.get(pathOf(undoLink));
      expect(asked.status).to.equal(200);
      expect(asked.text).to.contain('Put <strong>owner@example.com</strong> back');
      expect((await server.registry.accounts.findById(account.id))?.email).to.equal('intruder@evil.example');
      const token = new URL(undoLink).searchParams.get('token')!;
      expect((await supertest(server.url).post('/account/email/undo').type('form').send({ token })).status, 'no CSRF token, nothing').to.equal(403);

      const posted = await owner.post('/account/email/undo').type('form').send({ _csrf: csrfFrom(asked.text), token });
      expect(posted.status).to.equal(303);
      expect(posted.headers.location).to.equal('/account/email/undone');
      // Back to the link's page afterwards: what it did, not "this link can't be used".
      const back = await owner.get(pathOf(undoLink));
      expect([back.status, back.headers.location]).to.deep.equal([303, '/account/email/undone']);
      const undone = await owner.get('/account/email/undone');
      expect(undone.text).to.contain('<strong>owner@example.com</strong> is your account’s address again');
      expect((await owner.get('/account/email/undone')).text, 'a reload says the same').to.equal(undone.text);

      const after = await server.registry.accounts.findById(account.id);
      expect(after?.email).to.equal('owner@example.com');
      expect(after?.password_hash, 'no password works').to.equal(null);
      expect((await server.registry.accounts.authenticate('owner@example.com', PASSWORD)).ok).to.equal(false);
      expect((await server.registry.accounts.authenticate('intruder@evil.example', PASSWORD)).ok).to.equal(false);
      const intruderNow = await intruder.get('/account');
      expect(intruderNow.status, 'the intruder’s session ended').to.equal(303);
      const { rows: factors } = await server.registry.db.query('SELECT 1 FROM totp_factors WHERE account_id = $1', [account.id]);
      const { rows: codes } = await server.registry.db.query('SELECT 1 FROM recovery_codes WHERE account_id = $1', [account.id]);
      const { rows: identities } = await server.registry.db.query('SELECT 1 FROM account_identities WHERE account_id = $1', [account.id]);
      expect([factors.length, codes.length, identities.length], 'what was added since the change is gone').to.deep.equal([0, 0, 0]);
      const events = (await server.registry.events.page(account.id, { limit: 50 })).events.filter((e) => e.type === 'email.change_undone');
      expect(events).to.have.length(1);
      expect(events[0]!.detail).to.deep.include({ from: 'intruder@evil.example', to: 'owner@example.com', twoStepRemoved: true, loginsRemoved: 1 });

      // The old address is told how to set a password; the link sets one that works.
      await deliver();
      const mail = await smtp.lastTo('owner@example.com');
      expect(mail.subject).to.equal('Your Lanyard email address is back: set a new password');
      expect(mail.text).to.contain('two-step verification turned on around the change was turned off');
      expect(mail.text).not.to.contain('stays on');
      const reset = linkIn(mail, `${server.url}/password/reset?token=`);
      expect((await server.registry.passwordResets.reset(new URL(reset).searchParams.get('token')!, 'a brand new passphrase 42')).ok).to.equal(true);
      expect((await server.registry.accounts.authenticate('owner@example.com', 'a brand new passphrase 42')).ok).to.equal(true);

      // Once only.
      expect((await supertest(server.url).get(pathOf(undoLink))).status).to.equal(400);
      expect((await owner.post('/account/email/undo').type('form').send({ _csrf: csrfFrom(asked.text), token })).status).to.equal(400);
    });

    it('lets go of the account when the intruder’s address handed it to their organization', async () => {
      const account = await createAccount(server.registry, { email: 'victim@example.com' });
      const boss = await createAccount(server.registry, { email: 'boss@admins.example' });
      const created = await server.registry.organizations.service.create(boss.id, 'Evil Corp');
      if (!created.ok) throw new Error(created.problem);
      await verifiedDomain(server.registry, boss.id, created.organization.id, 'evil-corp.example');
      const { undoLink } = await intruderChanges('victim@example.com', 'victim@evil-corp.example');
      const managers = () => server.registry.db.query<{ organization_id: string }>("SELECT organization_id FROM account_managers WHERE account_id = $1 AND kind = 'organization'", [account.id]);
      expect((await managers()).rows.map((r) => r.organization_id), 'claimed by the address').to.deep.equal([created.organization.id]);
      const owner = supertest.agent(server.url);
      const asked = await owner.get(pathOf(undoLink));
      expect((await owner.post('/account/email/undo').type('form').send({ _csrf: csrfFrom(asked.text), token: new URL(undoLink).searchParams.get('token')! })).status).to.equal(303);
      expect((await managers()).rows).to.deep.equal([]);
      expect((await server.registry.db.query<{ managed: boolean }>('SELECT managed FROM accounts WHERE id = $1', [account.id])).rows[0]!.managed).to.equal(false);
    });

    it('lets the earliest link win: an intruder’s second change gives them a link to their own first address, which the owner’s undo ends', async () => {
      await createAccount(server.registry, { email: 'mine@example.com' });
      const first = await intruderChanges('mine@example.com', 'theirs@evil.example');
      const second = await intruderChanges('theirs@evil.example', 'theirs2@evil.example');
      const undo = async (link: string) => {
        const browser = supertest.agent(server.url);
        const asked = await browser.get(pathOf(link));
        if (asked.status !== 200) return asked.status;
        return (await browser.post('/account/email/undo').type('form').send({ _csrf: csrfFrom(asked.text), token: new URL(link).searchParams.get('token')! })).status;
      };
      // The intruder goes back to their first address: the owner's link still works after it …
      expect(await undo(second.undoLink)).to.equal(303);
      expect(await undo(first.undoLink)).to.equal(303);
      expect((await server.registry.accounts.findByEmail('mine@example.com'))?.email).to.equal('mine@example.com');

      // … and the other way round, the owner's undo ends the intruder's later link.
      await createAccount(server.registry, { email: 'ours@example.com' });
      const a = await intruderChanges('ours@example.com', 'grab@evil.example');
      const b = await intruderChanges('grab@evil.example', 'grab2@evil.example');
      expect(await undo(a.undoLink)).to.equal(303);
      expect(await undo(b.undoLink), 'the intruder’s link is gone').to.equal(400);
      expect((await server.registry.accounts.findByEmail('ours@example.com'))?.email).to.equal('ours@example.com');
    });

    it('removes an authenticator switched on in the week before the change, and a Trello member’s Google sign-in linked then', async () => {
      // The intruder entrenches first and changes the address last.
      const account = await createAccount(server.registry, { email: 'early@example.com' });
      const { recoveryCodes } = await enrolTwoStep(server.registry, account);
      await server.registry.db.query("UPDATE totp_factors SET confirmed_at = now() - interval '2 days' WHERE account_id = $1", [account.id]);
      const member = legacyMember({ google: { sub: 'g-intruder', email: 'intruder@gmail.example' }, emails: [{ address: 'intruder@trello.example', verified: true, primary: true }] });
      await importLegacy(server.registry, [member]);
      await server.registry.db.query("UPDATE trello_members SET linked_account_id = $1, linked_at = now() - interval '1 day', linked_by = 'manual' WHERE member_id = $2", [account.id, member.id]);
      const google = () => server.registry.federated.resolveGoogle({ sub: 'g-intruder', email: 'intruder@gmail.example', emailVerified: true, name: undefined });
      expect(await google(), 'the intruder’s Google leads to the account').to.deep.include({ ok: true });
      const { undoLink } = await intruderChanges('early@example.com', 'late@evil.example', { code: async () => recoveryCodes[0]! });
      const owner = supertest.agent(server.url);
      const asked = await owner.get(pathOf(undoLink));
      expect((await owner.post('/account/email/undo').type('form').send({ _csrf: csrfFrom(asked.text), token: new URL(undoLink).searchParams.get('token')! })).status).to.equal(303);
      const { rows } = await server.registry.db.query('SELECT 1 FROM totp_factors WHERE account_id = $1', [account.id]);
      expect(rows, 'switched on two days before the change').to.have.length(0);
      const after = await google();
      expect(after.ok ? after.account.id : undefined, 'the Google sign-in no longer leads to the account').not.to.equal(account.id);
      expect((await server.registry.trello.members.findByMemberId(member.id))?.linked_account_id, 'the link itself stays').to.equal(account.id);
    });

    it('ends a login the intruder left at its second step', async () => {
      const account = await createAccount(server.registry, { email: 'halfway@example.com' });
      const { recoveryCodes } = await enrolTwoStep(server.registry, account);
      await server.registry.db.query("UPDATE totp_factors SET confirmed_at = now() - interval '30 days' WHERE account_id = $1", [account.id]);
      const { undoLink } = await intruderChanges('halfway@example.com', 'half@evil.example', { code: async () => recoveryCodes[0]! });
      // A login past the password, waiting at the code page.
      const client = await createClient(server.registry, { firstParty: true, name: 'Jira' });
      const pending = await passPassword(server.url, client, 'half@evil.example');
      expect(pending.page.text).to.contain('autocomplete="one-time-code"');
      const owner = supertest.agent(server.url);
      const asked = await owner.get(pathOf(undoLink));
      expect((await owner.post('/account/email/undo').type('form').send({ _csrf: csrfFrom(asked.text), token: new URL(undoLink).searchParams.get('token')! })).status).to.equal(303);
      const finished = await pending.agent.post(`/interaction/${pending.uid}/two-step`).type('form').send({ _csrf: csrfFrom(pending.page.text), code: recoveryCodes[1]! });
      expect(finished.status, 'the second step is gone').to.equal(400);
      await deliver();
      expect((await smtp.lastTo('halfway@example.com', 'Your Lanyard email address is back: set a new password')).text).to.contain('Two-step verification stays on');
    });

    it('keeps the authenticator the owner had before the change', async () => {
      const account = await createAccount(server.registry, { email: 'guarded@example.com' });
      const { recoveryCodes } = await enrolTwoStep(server.registry, account);
      await server.registry.db.query("UPDATE totp_factors SET confirmed_at = now() - interval '8 days' WHERE account_id = $1", [account.id]);
      const { undoLink } = await intruderChanges('guarded@example.com', 'thief@evil.example', { code: async () => recoveryCodes[0]! });
      const owner = supertest.agent(server.url);
      const asked = await owner.get(pathOf(undoLink));
      const posted = await owner.post('/account/email/undo').type('form').send({ _csrf: csrfFrom(asked.text), token: new URL(undoLink).searchParams.get('token')! });
      expect(posted.status).to.equal(303);
      const { rows } = await server.registry.db.query('SELECT 1 FROM totp_factors WHERE account_id = $1', [account.id]);
      expect(rows, 'switched on more than a week before the change: the owner’s').to.have.length(1);
      expect((await server.registry.accounts.findById(account.id))?.email).to.equal('guarded@example.com');
    });

    it('changes nothing when the old address has another account since, and the link still works once it is free', async () => {
      const account = await createAccount(server.registry, { email: 'first@example.com' });
      const { undoLink } = await intruderChanges('first@example.com', 'second@example.com');
      const other = await createAccount(server.registry, { email: 'first@example.com' });
      const owner = supertest.agent(server.url);
      const asked = await owner.get(pathOf(undoLink));
      const token = new URL(undoLink).searchParams.get('token')!;
      const refused = await owner.post('/account/email/undo').type('form').send({ _csrf: csrfFrom(asked.text), token });
      expect(refused.status).to.equal(409);
      expect(refused.text).to.contain('another account uses that address');
      const kept = await server.registry.accounts.findById(account.id);
      expect([kept?.email, kept?.password_hash !== null]).to.deep.equal(['second@example.com', true]);
      await server.registry.db.query('DELETE FROM accounts WHERE id = $1', [other.id]);
      expect((await owner.post('/account/email/undo').type('form').send({ _csrf: csrfFrom(asked.text), token })).status).to.equal(303);
      expect((await server.registry.accounts.findById(account.id))?.email).to.equal('first@example.com');
    });

    it('works for a week, then the sweeper removes the link', async () => {
      const account = await createAccount(server.registry, { email: 'late@example.com' });
      const { undoLink } = await intruderChanges('late@example.com', 'later@example.com');
      await server.registry.db.query("UPDATE email_change_undos SET expires_at = now() - interval '1 second' WHERE account_id = $1", [account.id]);
      const res = await supertest(server.url).get(pathOf(undoLink));
      expect(res.status).to.equal(400);
      expect(res.text).to.contain('expired or was already used');
      await server.registry.sweeper.sweepOnce();
      const { rows } = await server.registry.db.query('SELECT 1 FROM email_change_undos WHERE account_id = $1', [account.id]);
      expect(rows).to.have.length(0);
    });
  });
});
