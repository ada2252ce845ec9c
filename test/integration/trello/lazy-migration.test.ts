import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom, followSteps } from '../../helpers/login-driver.ts';
import { startSmtp, type TestSmtp } from '../../helpers/smtp.ts';
import { startInteraction } from '../../helpers/authorization.ts';
import { enrolTwoStep, followToCallback, passPassword } from '../../helpers/two-step.ts';
import { importLegacy, legacyMember, TRELLO_PASSWORD } from '../../helpers/trello.ts';
import { attemptsCounted, expectBusyForm, refuseHashes } from '../../helpers/busy.ts';
import bcrypt from 'bcryptjs';

describe('legacy Trello accounts: migrating at login with the Trello password', () => {
  let smtp: TestSmtp;
  let server: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;

  beforeEach(async () => {
    await resetDatabase();
    smtp = await startSmtp();
    server = await startTestServer({ overrides: { smtpUrl: smtp.url } });
    client = await createClient(server.registry, { firstParty: true, name: 'Trello' });
  });
  afterEach(async () => {
    await server.close();
    await smtp.close();
  });

  const linking = () => server.registry.trello.linking;

  async function reachReview(email: string, password = TRELLO_PASSWORD) {
    const flow = await passPassword(server.url, client, email, password);
    expect(flow.page.status, flow.page.text.slice(0, 300)).to.equal(303);
    expect(flow.page.headers.location).to.equal(`/interaction/${flow.uid}/trello/review`);
    const review = await flow.agent.get(flow.page.headers.location!);
    expect(review.status).to.equal(200);
    return { ...flow, review };
  }

  it('reviews the kept address, creates the account with the same password re-hashed, links it and continues to the client', async () => {
    const member = legacyMember({
      emails: [
        { address: 'grace@navy.example', verified: true, primary: true, lastUsedAt: '2025-05-01T00:00:00Z' },
        { address: 'grace.old@example.org', verified: true, lastUsedAt: '2019-01-01T00:00:00Z' },
        { address: 'typo@example.org', verified: false },
      ],
    });
    await importLegacy(server.registry, [member]);
    // Logging in with a secondary address works too: it belongs to the member.
    const flow = await reachReview('grace.old@example.org');
    expect(flow.review.text).to.contain('Update your Trello account');
    expect(flow.review.text).to.match(/value="grace@navy.example" checked/);
    expect(flow.review.text).to.contain('value="grace.old@example.org"');
    expect(flow.review.text).not.to.contain('value="typo@example.org"'); // unverified: not offered

    const done = await flow.agent.post(`/interaction/${flow.uid}/trello/review`).type('form').send({ _csrf: csrfFrom(flow.review.text), email: 'grace@navy.example' });
    expect(done.status).to.equal(303);
    const callback = await followToCallback(flow.agent, server.url, done.headers.location!);
    expect(callback.searchParams.get('code')).to.be.a('string');

    const account = await server.registry.accounts.findByEmail('grace@navy.example');
    expect(account?.password_hash).to.match(/^\$argon2id\$/);
    expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(account!.id);
    // The unverified address is dropped, not reserved: it may be somebody else's.
    expect(await linking().retiredOf(account!.id)).to.deep.equal(['grace.old@example.org']);
    // The same password now logs in to the account, everywhere.
    const again = await passPassword(server.url, client, 'grace@navy.example', TRELLO_PASSWORD);
    expect(again.page.status).to.equal(303);
    expect(again.page.headers.location).to.match(/[?&]code=/);
  });

  it('answers a wrong Trello password exactly like an unknown account', async () => {
    const member = legacyMember();
    await importLegacy(server.registry, [member]);
    const wrong = await passPassword(server.url, client, member.emails[0]!.address, 'not the trello password');
    const unknown = await passPassword(server.url, client, 'nobody@example.com', 'not the trello password');
    expect(wrong.page.status).to.equal(401);
    expect(unknown.page.status).to.equal(401);
    const alert = (html: string) => /<div class="alert"[\s\S]*?<\/div>/.exec(html)?.[0];
    expect(alert(wrong.page.text)).to.equal(alert(unknown.page.text));
  });

  it('lets the person pick another verified address, and refuses one that is not theirs', async () => {
    const member = legacyMember({ emails: [{ address: 'first@example.com', verified: true, primary: true }, { address: 'second@example.com', verified: true }] });
    await importLegacy(server.registry, [member]);
    const flow = await reachReview('first@example.com');
    const stranger = await flow.agent.post(`/interaction/${flow.uid}/trello/review`).type('form').send({ _csrf: csrfFrom(flow.review.text), email: 'someone@example.com' });
    expect(stranger.status).to.equal(400);
    const done = await flow.agent.post(`/interaction/${flow.uid}/trello/review`).type('form').send({ _csrf: csrfFrom(flow.review.text), email: 'second@example.com' });
    expect(done.status).to.equal(303);
    expect((await server.registry.accounts.findByEmail('second@example.com'))?.id).to.be.a('string');
    expect(await server.registry.accounts.findByEmail('first@example.com')).to.equal(undefined);
  });

  it('says so when the kept address is of another kind (company vs personal) than the last one used', async () => {
    const member = legacyMember({ emails: [
      { address: 'grace@acme.example', verified: true, primary: true, lastUsedAt: '2021-01-01T00:00:00Z' },
      { address: 'grace@gmail.com', verified: true, lastUsedAt: '2025-09-01T00:00:00Z' },
    ] });
    await importLegacy(server.registry, [member]);
    const flow = await reachReview('grace@gmail.com');
    expect(flow.review.text).to.contain('which is not the address you used last');
  });

  it('links to an existing account only with that account’s password', async () => {
    const existing = await createAccount(server.registry, { email: 'shared@example.com' });
    const member = legacyMember({ emails: [{ address: 'shared@example.com', verified: true, primary: true }, { address: 'only-trello@example.com', verified: true }] });
    await importLegacy(server.registry, [member]);
    // The address typed has no account but belongs to the member; the kept one is taken.
    const flow = await reachReview('only-trello@example.com');
    const taken = await flow.agent.post(`/interaction/${flow.uid}/trello/review`).type('form').send({ _csrf: csrfFrom(flow.review.text), email: 'shared@example.com' });
    expect(taken.status).to.equal(409);
    expect(taken.text).to.contain('This address already has an account');
    expect(taken.text, 'a way out for someone who forgot that password').to.contain('<a href="/password/forgot">Forgot your password?</a>');
    const wrong = await flow.agent.post(`/interaction/${flow.uid}/trello/prove`).type('form').send({ _csrf: csrfFrom(taken.text), email: 'shared@example.com', password: 'guess' });
    expect(wrong.status).to.equal(401);
    expect(wrong.text).to.contain('<a href="/password/forgot">Forgot your password?</a>');
    expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(null);
    const proven = await flow.agent.post(`/interaction/${flow.uid}/trello/prove`).type('form').send({ _csrf: csrfFrom(taken.text), email: 'shared@example.com', password: PASSWORD });
    expect(proven.status).to.equal(303);
    expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(existing.id);
    expect(await linking().retiredOf(existing.id)).to.deep.equal(['only-trello@example.com']);
  });

  it('answers a full password hashing on the proof form with that form again, and links once it is sent again (decision 0063)', async () => {
    const existing = await createAccount(server.registry, { email: 'proving@example.com' });
    const member = legacyMember({ emails: [{ address: 'proving@example.com', verified: true, primary: true }, { address: 'trello-side@example.com', verified: true }] });
    await importLegacy(server.registry, [member]);
    const flow = await reachReview('trello-side@example.com');
    const taken = await flow.agent.post(`/interaction/${flow.uid}/trello/review`).type('form').send({ _csrf: csrfFrom(flow.review.text), email: 'proving@example.com' });
    const before = await attemptsCounted();
    const refusing = refuseHashes(server.registry);
    let busy: supertest.Response;
    try {
      busy = await flow.agent.post(`/interaction/${flow.uid}/trello/prove`).type('form').send({ _csrf: csrfFrom(taken.text), email: 'proving@example.com', password: PASSWORD });
    } finally {
      refusing.restore();
    }
    expect(refusing.refused(), 'the proof asked for no hash').to.be.greaterThan(0);
    expectBusyForm(busy, { action: `/interaction/${flow.uid}/trello/prove`, kept: ['proving@example.com'], passwords: [PASSWORD] });
    expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(null);
    expect(await attemptsCounted(), 'the attempt reserved for the proof was given back').to.equal(before);
    const proven = await flow.agent.post(`/interaction/${flow.uid}/trello/prove`).type('form').send({ _csrf: csrfFrom(busy.text), email: 'proving@example.com', password: PASSWORD });
    expect(proven.status).to.equal(303);
    expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(existing.id);
  });

  it('refuses the Trello password once linked, saying what to use instead', async () => {
    const member = legacyMember();
    await importLegacy(server.registry, [member]);
    const flow = await reachReview(member.emails[0]!.address);
    await flow.agent.post(`/interaction/${flow.uid}/trello/review`).type('form').send({ _csrf: csrfFrom(flow.review.text), email: member.emails[0]!.address });
    const account = await server.registry.accounts.findByEmail(member.emails[0]!.address);
    // The person changes the account's password; the old Trello password is refused by name.
    await server.registry.passwordResets.change(account!.id, TRELLO_PASSWORD, 'a new password for everything', 'no-session');
    const old = await passPassword(server.url, client, member.emails[0]!.address, TRELLO_PASSWORD);
    expect(old.page.status).to.equal(401);
    expect(old.page.text).to.contain('Your Trello password no longer works');
  });

  it('does not log in with a retired address, and tells every address of the account which one to use', async () => {
    const member = legacyMember({ emails: [{ address: 'current@example.com', verified: true, primary: true }, { address: 'retired-a@example.com', verified: true }, { address: 'retired-b@example.com', verified: true }] });
    await importLegacy(server.registry, [member]);
    await linking().link({ memberId: member.id, email: 'current@example.com', method: 'bulk' });
    const flow = await passPassword(server.url, client, 'Retired-A@example.com', 'whatever');
    // Answered like an unknown address (the address cannot be tested); the mail says the rest.
    expect(flow.page.status).to.equal(401);
    expect(flow.page.text).to.contain('Check your email and password');
    await server.registry.background.idle();
    await server.registry.mail.delivery.deliverDue();
    for (const to of ['current@example.com', 'retired-a@example.com', 'retired-b@example.com']) {
      const mail = await smtp.lastTo(to);
      expect(mail.subject).to.equal('Log in to Lanyard with current@example.com');
      expect(mail.text).to.contain('Log in with this address from now on: current@example.com');
    }
  });

  it('links to an account with two-step verification only once its code is given', async () => {
    const existing = await createAccount(server.registry, { email: 'guarded@example.com' });
    const { recoveryCodes } = await enrolTwoStep(server.registry, existing);
    const member = legacyMember({ emails: [{ address: 'guarded@example.com', verified: true, primary: true }, { address: 'elsewhere@example.com', verified: true }] });
    await importLegacy(server.registry, [member]);
    const flow = await reachReview('elsewhere@example.com');
    const taken = await flow.agent.post(`/interaction/${flow.uid}/trello/review`).type('form').send({ _csrf: csrfFrom(flow.review.text), email: 'guarded@example.com' });
    const proven = await followSteps(flow.agent, await flow.agent.post(`/interaction/${flow.uid}/trello/prove`).type('form').send({ _csrf: csrfFrom(taken.text), email: 'guarded@example.com', password: PASSWORD }));
    expect(proven.status).to.equal(200);
    expect(proven.text).to.contain('Two-step verification');
    expect((await linking().findByMemberId(member.id))?.linked_account_id, 'not before the second step').to.equal(null);
    const wrong = await flow.agent.post(`/interaction/${flow.uid}/two-step`).type('form').send({ _csrf: csrfFrom(proven.text), code: '000000' });
    expect(wrong.status).to.equal(401);
    expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(null);
    const done = await flow.agent.post(`/interaction/${flow.uid}/two-step`).type('form').send({ _csrf: csrfFrom(proven.text), code: recoveryCodes[0] });
    expect(done.status).to.equal(303);
    expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(existing.id);
  });

  describe('when the member’s address already has an account', () => {
    let existing: Awaited<ReturnType<typeof createAccount>>;
    let member: ReturnType<typeof legacyMember>;

    beforeEach(async () => {
      existing = await createAccount(server.registry, { email: 'both@example.com' });
      member = legacyMember({ username: 'bothsides', emails: [{ address: 'both@example.com', verified: true, primary: true }, { address: 'trello-only@example.com', verified: true }] });
      await importLegacy(server.registry, [member]);
    });

    it('takes the Trello password there, then the account’s password, and links the two', async () => {
      const flow = await passPassword(server.url, client, 'both@example.com', TRELLO_PASSWORD);
      expect(flow.page.status, flow.page.text.slice(0, 300)).to.equal(303);
      expect(flow.page.headers.location).to.equal(`/interaction/${flow.uid}/trello/prove`);
      const prove = await flow.agent.get(flow.page.headers.location!);
      expect(prove.text).to.contain('Your Trello password is right');
      const wrong = await flow.agent.post(`/interaction/${flow.uid}/trello/prove`).type('form').send({ _csrf: csrfFrom(prove.text), email: 'both@example.com', password: TRELLO_PASSWORD });
      expect(wrong.status, 'the Trello password does not prove the account').to.equal(401);
      const done = await flow.agent.post(`/interaction/${flow.uid}/trello/prove`).type('form').send({ _csrf: csrfFrom(prove.text), email: 'both@example.com', password: PASSWORD });
      expect(done.status).to.equal(303);
      await followToCallback(flow.agent, server.url, done.headers.location!);
      expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(existing.id);
      expect(await linking().retiredOf(existing.id)).to.deep.equal(['trello-only@example.com']);
    });

    it('offers the link after the account’s own password, asking the Trello password', async () => {
      const flow = await passPassword(server.url, client, 'both@example.com', PASSWORD);
      expect(flow.posted.status, 'the offer is a GET of its own').to.equal(303);
      expect(flow.posted.headers.location).to.equal(`/interaction/${flow.uid}/trello/offer`);
      expect(flow.page.status).to.equal(200);
      expect(flow.page.text).to.contain('Link your Trello account');
      const wrong = await flow.agent.post(`/interaction/${flow.uid}/trello/offer`).type('form').send({ _csrf: csrfFrom(flow.page.text), password: PASSWORD });
      expect(wrong.status).to.equal(401);
      expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(null);
      const done = await flow.agent.post(`/interaction/${flow.uid}/trello/offer`).type('form').send({ _csrf: csrfFrom(flow.page.text), password: TRELLO_PASSWORD });
      expect(done.status).to.equal(303);
      await followToCallback(flow.agent, server.url, done.headers.location!);
      expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(existing.id);
      // Linked: the offer is not made again.
      const again = await passPassword(server.url, client, 'both@example.com', PASSWORD);
      expect(again.page.status).to.equal(303);
    });

    it('answers a full password hashing on the offer with the offer again, and links once it is sent again (decision 0063)', async () => {
      const flow = await passPassword(server.url, client, 'both@example.com', PASSWORD);
      expect(flow.page.text).to.contain('Link your Trello account');
      const before = await attemptsCounted();
      const refusing = refuseHashes(server.registry);
      let busy: supertest.Response;
      try {
        busy = await flow.agent.post(`/interaction/${flow.uid}/trello/offer`).type('form').send({ _csrf: csrfFrom(flow.page.text), password: TRELLO_PASSWORD });
      } finally {
        refusing.restore();
      }
      expect(refusing.refused(), 'the offer asked for no refusable hash').to.be.greaterThan(0);
      expectBusyForm(busy, { action: `/interaction/${flow.uid}/trello/offer`, passwords: [TRELLO_PASSWORD] });
      expect(await attemptsCounted(), 'the attempt reserved for the check was given back').to.equal(before);
      expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(null);
      const done = await flow.agent.post(`/interaction/${flow.uid}/trello/offer`).type('form').send({ _csrf: csrfFrom(busy.text), password: TRELLO_PASSWORD });
      expect(done.status).to.equal(303);
      await followToCallback(flow.agent, server.url, done.headers.location!);
      expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(existing.id);
    });

    it('lets the person go on without linking, and refuses the offer without its sealed state', async () => {
      const flow = await passPassword(server.url, client, 'both@example.com', PASSWORD);
      const skipped = await flow.agent.post(`/interaction/${flow.uid}/trello/offer/skip`).type('form').send({ _csrf: csrfFrom(flow.page.text) });
      expect(skipped.status).to.equal(303);
      const callback = await followToCallback(flow.agent, server.url, skipped.headers.location!);
      expect(callback.searchParams.get('code')).to.be.a('string');
      expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(null);
      // Without the account's password in this interaction, the offer does not open.
      const agent = supertest.agent(server.url);
      const uid = await startInteraction(agent, client);
      const login = await agent.get(`/interaction/${uid}`);
      const forged = await agent.post(`/interaction/${uid}/trello/offer/skip`).type('form').send({ _csrf: csrfFrom(login.text) });
      expect(forged.status).to.equal(400);
    });
  });

  it('takes the member whose Trello password matches when two verified the address, whatever their order', async () => {
    const make = () => [
      legacyMember({ id: 'twin-a', username: 'twin-a', passwordHash: bcrypt.hashSync('password of twin a', 4), emails: [{ address: 'twins@example.com', verified: true, primary: true }] }),
      legacyMember({ id: 'twin-b', username: 'twin-b', passwordHash: bcrypt.hashSync('password of twin b', 4), emails: [{ address: 'twins@example.com', verified: true, primary: true }] }),
    ];
    for (const order of [make(), make().reverse()]) {
      await resetDatabase();
      client = await createClient(server.registry, { firstParty: true, name: 'Trello' });
      const imported = await importLegacy(server.registry, order);
      expect(imported.flagged.map((f) => f.reason)).to.have.length(2);
      for (const who of ['a', 'b']) {
        const flow = await reachReview('twins@example.com', `password of twin ${who}`);
        expect(flow.review.text).to.contain(`<strong>twin-${who}</strong>`);
      }
    }
  });

  it('offers only a new, code-verified address when no Trello address was verified', async () => {
    const member = legacyMember({ emails: [{ address: 'never-verified@example.com', verified: false, primary: true }] });
    await importLegacy(server.registry, [member]);
    const flow = await reachReview('never-verified@example.com');
    expect(flow.review.text).to.contain('Confirm an address first');
    expect(flow.review.text).not.to.contain('name="email"');
    const attempt = await flow.agent.post(`/interaction/${flow.uid}/trello/review`).type('form').send({ _csrf: csrfFrom(flow.review.text), email: 'never-verified@example.com' });
    expect(attempt.status).to.equal(400);
  });

  it('refuses a new address for an account managed by a Trello Enterprise, and changes nothing', async () => {
    const member = legacyMember({ enterprise: { id: 'ent-1', name: 'Acme Enterprise' } });
    await importLegacy(server.registry, [member]);
    const flow = await reachReview(member.emails[0]!.address);
    const page = await flow.agent.get(`/interaction/${flow.uid}/trello/change-email`);
    expect(page.status).to.equal(403);
    expect(page.text).to.contain('Ask the admin of your Trello Enterprise to contact our support team');
    const post = await flow.agent.post(`/interaction/${flow.uid}/trello/change-email`).type('form').send({ _csrf: csrfFrom(flow.review.text), email: 'new@example.com' });
    expect(post.status).to.equal(403);
    expect((await linking().findByMemberId(member.id))?.linked_account_id).to.equal(null);
  });

  it('takes a new address proven by an emailed code when none of the old ones can be used', async () => {
    const member = legacyMember();
    await importLegacy(server.registry, [member]);
    const flow = await reachReview(member.emails[0]!.address);
    const form = await flow.agent.get(`/interaction/${flow.uid}/trello/change-email`);
    const posted = await flow.agent.post(`/interaction/${flow.uid}/trello/change-email`).type('form').send({ _csrf: csrfFrom(form.text), email: 'Fresh@Example.com' });
    // "Check your email" is a GET of its own: a reload shows it again and mails nothing more.
    expect(posted.status).to.equal(303);
    expect(posted.headers.location).to.equal(`/interaction/${flow.uid}/trello/change-email/code`);
    const sent = await flow.agent.get(posted.headers.location!);
    expect(sent.status).to.equal(200);
    expect(sent.text).to.contain('fresh@example.com');
    expect((await flow.agent.get(posted.headers.location!)).status, 'a reload').to.equal(200);
    await server.registry.mail.delivery.deliverDue();
    const code = /\b(\d{6})\b/.exec((await smtp.lastTo('fresh@example.com')).text ?? '')![1]!;
    const toFresh = smtp.messages.filter((m) => (Array.isArray(m.to) ? m.to : [m.to]).some((t) => t?.value.some((v) => v.address === 'fresh@example.com')));
    expect(toFresh, 'one code, however often the page is shown').to.have.length(1);
    const wrong = await flow.agent.post(`/interaction/${flow.uid}/trello/change-email/code`).type('form').send({ _csrf: csrfFrom(sent.text), code: code === '000000' ? '111111' : '000000' });
    expect(wrong.status).to.equal(400);
    const done = await flow.agent.post(`/interaction/${flow.uid}/trello/change-email/code`).type('form').send({ _csrf: csrfFrom(sent.text), code });
    expect(done.status).to.equal(303);
    const account = await server.registry.accounts.findByEmail('fresh@example.com');
    expect(account?.email_verified).to.equal(true);
    expect(await linking().retiredOf(account!.id)).to.deep.equal([member.emails[0]!.address]);
  });

  it('leads a member whose address is an account with a Trello member already to its own review, with another address', async () => {
    const shareA = legacyMember({ id: 'tm-shareA', passwordHash: bcrypt.hashSync('password of share a', 4), emails: [{ address: 'shared@example.com', verified: true, primary: true }] });
    const shareB = legacyMember({ id: 'tm-shareB', username: 'share-b', passwordHash: bcrypt.hashSync('password of share b', 4), emails: [{ address: 'shared@example.com', verified: true, primary: true }] });
    await importLegacy(server.registry, [shareA, shareB]);
    // The bulk run links shareA to shared@; shareB can't be linked there (one member per account).
    await server.registry.trello.bulk.run({ dryRun: false });
    const account = await server.registry.accounts.findByEmail('shared@example.com');
    expect((await linking().findByMemberId(shareA.id))?.linked_account_id).to.equal(account!.id);

    // shareB's Trello password at shared@: its own review, where shared@ is neither offered nor
    // preselected, and a new address is proven by a code.
    const flow = await reachReview('shared@example.com', 'password of share b');
    expect(flow.review.text).to.contain('<strong>share-b</strong>');
    expect(flow.review.text).to.contain('Confirm another address');
    expect(flow.review.text).not.to.contain('name="email"');
    const taken = await flow.agent.post(`/interaction/${flow.uid}/trello/review`).type('form').send({ _csrf: csrfFrom(flow.review.text), email: 'shared@example.com' });
    expect(taken.status).to.equal(400);
    const form = await flow.agent.get(`/interaction/${flow.uid}/trello/change-email`);
    const sent = await followSteps(flow.agent, await flow.agent.post(`/interaction/${flow.uid}/trello/change-email`).type('form').send({ _csrf: csrfFrom(form.text), email: 'share-b@example.com' }));
    expect(sent.status).to.equal(200);
    await server.registry.mail.delivery.deliverDue();
    const code = /\b(\d{6})\b/.exec((await smtp.lastTo('share-b@example.com')).text ?? '')![1]!;
    const done = await flow.agent.post(`/interaction/${flow.uid}/trello/change-email/code`).type('form').send({ _csrf: csrfFrom(sent.text), code });
    expect(done.status).to.equal(303);
    const own = await server.registry.accounts.findByEmail('share-b@example.com');
    expect((await linking().findByMemberId(shareB.id))?.linked_account_id).to.equal(own!.id);
    // shared@ stays the first account's, not retired for the new one.
    expect(await linking().retiredOf(own!.id)).to.deep.equal([]);
    expect((await linking().findByMemberId(shareA.id))?.linked_account_id).to.equal(account!.id);

    // The linked member's old password at shared@ is still recognised, and a wrong one answers
    // like any wrong password.
    const old = await passPassword(server.url, client, 'shared@example.com', 'password of share a');
    expect(old.page.status).to.equal(401);
    expect(old.page.text).to.contain('Your Trello password no longer works');
    const wrong = await passPassword(server.url, client, 'shared@example.com', 'a wrong password');
    expect(wrong.page.status).to.equal(401);
    expect(wrong.page.text).to.contain('don’t match an account');
  });

  it('never offers nor preselects an address of an account that already has a Trello member', async () => {
    const g1 = legacyMember({ id: 'tm-g1', emails: [{ address: 'g1@example.com', verified: true, primary: true }] });
    await importLegacy(server.registry, [g1]);
    await server.registry.trello.bulk.run({ dryRun: false });
    const newshare = legacyMember({ id: 'tm-newshare', passwordHash: bcrypt.hashSync('password of newshare', 4), emails: [
      { address: 'g1@example.com', verified: true, primary: true, lastUsedAt: '2025-06-01T00:00:00Z' },
      { address: 'nover@example.com', verified: true, lastUsedAt: '2020-06-01T00:00:00Z' },
    ] });
    await importLegacy(server.registry, [newshare]);
    for (const at of ['nover@example.com', 'g1@example.com']) {
      const flow = await reachReview(at, 'password of newshare');
      expect(flow.review.text).to.match(/value="nover@example.com" checked/);
      expect(flow.review.text).not.to.contain('value="g1@example.com"');
      const taken = await flow.agent.post(`/interaction/${flow.uid}/trello/review`).type('form').send({ _csrf: csrfFrom(flow.review.text), email: 'g1@example.com' });
      expect(taken.status).to.equal(400);
      expect(taken.text).to.contain('Choose one of your addresses');
    }
    const flow = await reachReview('g1@example.com', 'password of newshare');
    const done = await flow.agent.post(`/interaction/${flow.uid}/trello/review`).type('form').send({ _csrf: csrfFrom(flow.review.text), email: 'nover@example.com' });
    expect(done.status).to.equal(303);
    const account = await server.registry.accounts.findByEmail('nover@example.com');
    expect((await linking().findByMemberId(newshare.id))?.linked_account_id).to.equal(account!.id);
    expect(await linking().retiredOf(account!.id)).to.deep.equal([]);
  });

  it('refuses the review pages without the sealed state of this interaction', async () => {
    const member = legacyMember();
    await importLegacy(server.registry, [member]);
    // A real interaction, but no Trello password was given in it: no sealed state.
    const agent = supertest.agent(server.url);
    const uid = await startInteraction(agent, client);
    const res = await agent.get(`/interaction/${uid}/trello/review`);
    expect(res.status).to.equal(400);
    expect(res.text).to.contain('Start again');
    // The member proven in one interaction is that interaction's flow record (decision 0026):
    // nothing of it travels in a cookie, and another interaction, carrying every cookie the first
    // one was given, has no member proven.
    const flow = await reachReview(member.emails[0]!.address);
    const setCookies = ([] as string[]).concat(flow.page.headers['set-cookie'] ?? []);
    expect(setCookies.filter((c) => c.startsWith('lanyard.trello_pending='))).to.deep.equal([]);
    expect((await server.registry.db.query("SELECT 1 FROM login_flows WHERE step = 'trello_member' AND trello->'member'->>'memberId' = $1", [member.id])).rows).to.have.length(1);
    const other = supertest.agent(server.url);
    const otherUid = await startInteraction(other, client);
    const carried = await other.get(`/interaction/${otherUid}/trello/review`).set('Cookie', setCookies.map((c) => c.split(';')[0]!).filter((c) => !c.startsWith('_interaction')).join('; '));
    expect(carried.status).to.equal(400);
    expect(carried.text, 'refused for the missing state, not for a lost interaction').to.contain('Start again');
  });
});
