import { expect } from 'chai';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount } from '../../helpers/factories.ts';
import { startSmtp, linkIn, type TestSmtp } from '../../helpers/smtp.ts';
import { importLegacy, legacyMember } from '../../helpers/trello.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import supertest from 'supertest';
import { CONFLICT, type BulkOutcome } from '../../../src/legacy-trello/bulk-migration.ts';

describe('legacy Trello accounts: migrating the rest in bulk', () => {
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

  it('lists what it would do and every conflict in a dry run, changing nothing', async () => {
    await createAccount(server.registry, { email: 'taken@example.com' });
    const ok = legacyMember({ emails: [{ address: 'fine@example.com', verified: true, primary: true }, { address: 'extra@example.com', verified: true }, { address: 'unproven@example.com', verified: false }] });
    const clash = legacyMember({ emails: [{ address: 'taken@example.com', verified: true, primary: true }] });
    await importLegacy(server.registry, [ok, clash]);
    const outcomes: unknown[] = [];
    const summary = await server.registry.trello.bulk.run({ dryRun: true, batchSize: 1, onOutcome: (o) => outcomes.push(o) });
    expect(summary).to.deep.equal({ examined: 2, linked: 1, conflicts: 1 });
    // The unverified address is neither kept nor retired: it may be somebody else's.
    expect(outcomes).to.deep.include({ memberId: ok.id, action: 'link', email: 'fine@example.com', retire: ['extra@example.com'] });
    expect(outcomes.find((o) => (o as { memberId: string }).memberId === clash.id)).to.deep.include({ action: 'conflict', email: 'taken@example.com' });
    expect(await server.registry.trello.bulk.remaining()).to.equal(2);
    expect(await server.registry.accounts.findByEmail('fine@example.com')).to.equal(undefined);
  });

  it('predicts in the dry run exactly what the run then does, in the same order, across batches', async () => {
    await createAccount(server.registry, { email: 'has-account@example.com' });
    const v = (address: string, primary = false) => ({ address, verified: true, primary });
    await importLegacy(server.registry, [
      // Links with its own address and retires shared@: …
      legacyMember({ id: 'bulk-01', emails: [v('one@example.com', true), v('shared@example.com')] }),
      // … so this one's best address is retired by then (same batch).
      legacyMember({ id: 'bulk-02', emails: [v('shared@example.com', true), v('two-alt@example.com')] }),
      // The same verified address on two members: the first takes it (next batch) …
      legacyMember({ id: 'bulk-03', emails: [v('both@example.com', true)] }),
      // … and it is an account's when the second comes.
      legacyMember({ id: 'bulk-04', emails: [v('both@example.com', true), v('four-alt@example.com')] }),
      legacyMember({ id: 'bulk-05', emails: [v('has-account@example.com', true)] }),
      legacyMember({ id: 'bulk-06', emails: [{ address: 'unproven@example.com', verified: false }] }),
      // Its second address was retired by bulk-01: not retired again, not kept.
      legacyMember({ id: 'bulk-07', emails: [v('seven@example.com', true), v('shared@example.com')] }),
      // Its only verified addresses are an account's with a member (bulk-03's) and retired
      // (by bulk-01): nothing free; the Trello password at both@ leads to its own review.
      legacyMember({ id: 'bulk-08', emails: [v('both@example.com', true), v('shared@example.com')] }),
    ]);
    const predicted: BulkOutcome[] = [];
    const dry = await server.registry.trello.bulk.run({ dryRun: true, batchSize: 2, onOutcome: (o) => predicted.push(o) });
    const done: BulkOutcome[] = [];
    const real = await server.registry.trello.bulk.run({ dryRun: false, batchSize: 2, onOutcome: (o) => done.push(o) });
    expect(dry).to.deep.equal(real);
    expect(predicted).to.deep.equal(done);
    expect(done.map((o) => [o.memberId, o.action])).to.deep.equal([
      ['bulk-01', 'link'], ['bulk-02', 'link'], ['bulk-03', 'link'], ['bulk-04', 'link'], ['bulk-05', 'conflict'], ['bulk-06', 'conflict'], ['bulk-07', 'link'], ['bulk-08', 'conflict'],
    ]);
    // The best address taken for good (retired, or an account's that has a member): the best
    // free verified one is kept instead.
    expect(done[1]).to.deep.include({ email: 'two-alt@example.com', retire: [] });
    expect(done[3]).to.deep.include({ email: 'four-alt@example.com', retire: [] });
    // An account without a member: linked only by proving it, at login.
    expect(done[4]).to.deep.include({ email: 'has-account@example.com', reason: CONFLICT.taken });
    expect(done[6]).to.deep.include({ email: 'seven@example.com', retire: [] });
    expect(done[7]).to.deep.include({ email: 'both@example.com', reason: CONFLICT.noFreeAddress('both@example.com') });
    expect(await server.registry.trello.bulk.remaining()).to.equal(3);
  });

  it('links every unlinked member without a password and emails a link to set one', async () => {
    const members = [legacyMember({ username: 'ada' }), legacyMember(), legacyMember()];
    await importLegacy(server.registry, members);
    const summary = await server.registry.trello.bulk.run({ dryRun: false, batchSize: 2 });
    expect(summary).to.deep.equal({ examined: 3, linked: 3, conflicts: 0 });
    expect(await server.registry.trello.bulk.remaining()).to.equal(0);
    const account = await server.registry.accounts.findByEmail(members[0]!.emails[0]!.address);
    expect(account?.password_hash).to.equal(null);
    expect((await server.registry.trello.linking.findByMemberId(members[0]!.id))?.linked_by).to.equal('bulk');

    await server.registry.mail.delivery.deliverDue();
    const mail = await smtp.lastTo(account!.email);
    expect(mail.subject).to.equal('Your Trello account now signs in with Lanyard');
    expect(mail.text).to.contain('Your Trello account (ada)');
    const link = linkIn(mail, `${server.url}/password/reset?token=`);
    const agent = supertest.agent(server.url);
    const page = await agent.get(new URL(link).pathname + new URL(link).search);
    expect(page.status).to.equal(200);
    const set = await agent.post('/password/reset').type('form').redirects(1).send({ _csrf: csrfFrom(page.text), token: new URL(link).searchParams.get('token'), password: 'a password chosen after migration' });
    expect(set.status).to.equal(200);
    expect((await server.registry.accounts.authenticate(account!.email, 'a password chosen after migration')).ok).to.equal(true);
  });

  it('never gives an unverified address an account: such members are conflicts, left to log in', async () => {
    const member = legacyMember({ emails: [{ address: 'maybe-someone-elses@example.com', verified: false, primary: true }] });
    await importLegacy(server.registry, [member]);
    const outcomes: unknown[] = [];
    const summary = await server.registry.trello.bulk.run({ dryRun: false, onOutcome: (o) => outcomes.push(o) });
    expect(summary).to.deep.equal({ examined: 1, linked: 0, conflicts: 1 });
    expect((outcomes[0] as { reason: string }).reason).to.match(/^no verified address/);
    expect(await server.registry.accounts.findByEmail('maybe-someone-elses@example.com')).to.equal(undefined);
  });

  it('resumes: a second run continues with what is still unlinked and skips conflicts again', async () => {
    await createAccount(server.registry, { email: 'clash@example.com' });
    const first = legacyMember();
    await importLegacy(server.registry, [first]);
    await server.registry.trello.bulk.run({ dryRun: false });
    const later = [legacyMember(), legacyMember({ emails: [{ address: 'clash@example.com', verified: true }] })];
    await importLegacy(server.registry, later);
    const summary = await server.registry.trello.bulk.run({ dryRun: false });
    expect(summary).to.deep.equal({ examined: 2, linked: 1, conflicts: 1 });
    expect(await server.registry.trello.bulk.remaining()).to.equal(1);
  });
});
