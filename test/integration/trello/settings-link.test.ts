import { expect } from 'chai';
import * as oidc from 'openid-client';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { signInToAccount, submit } from '../../helpers/account-pages.ts';
import { importLegacy, legacyMember, TRELLO_PASSWORD } from '../../helpers/trello.ts';
import { attemptsCounted, expectBusyForm, refuseHashes } from '../../helpers/busy.ts';

describe('legacy Trello accounts: "Update account" from settings, and no unlink anywhere', () => {
  let server: TestServer;

  beforeEach(async () => {
    await resetDatabase();
    server = await startTestServer();
  });
  afterEach(async () => server.close());

  it('links the Trello account to the signed-in account after the Trello password and a review', async () => {
    const account = await createAccount(server.registry, { email: 'me@example.com' });
    // Signed in first: a login after the import would offer the link right away (lazy-migration tests).
    const { agent } = await signInToAccount(server.url, account.email);
    const member = legacyMember({ username: 'hopper', emails: [{ address: 'hopper@trello-era.example', verified: true, primary: true }, { address: 'me@example.com', verified: true }] });
    await importLegacy(server.registry, [member]);

    const page = await agent.get('/account/trello');
    expect(page.text).to.contain('Still using a separate Trello login?');
    const wrong = await submit(agent, '/account/trello', '/account/trello', { login: 'hopper', password: 'nope' });
    expect(wrong.status).to.equal(401);
    expect(wrong.text).to.contain('Check your Trello details');
    expect(wrong.text).to.match(/id="login"[^>]*aria-invalid="true" aria-describedby="form-error"/);

    const review = await submit(agent, '/account/trello', '/account/trello', { login: 'HOPPER', password: TRELLO_PASSWORD });
    expect(review.status).to.equal(200);
    expect(review.text).to.contain('will sign in with this account (<strong>me@example.com</strong>)');
    expect(review.text).to.contain('hopper@trello-era.example');
    expect((await server.registry.trello.linking.findByMemberId(member.id))?.linked_account_id, 'nothing happens before the review is confirmed').to.equal(null);

    const linked = await agent.post('/account/trello/link').type('form').send({ _csrf: csrfFrom(review.text) });
    expect(linked.status).to.equal(303);
    expect(linked.headers.location).to.equal('/account/trello');
    const linkedPage = await agent.get('/account/trello');
    expect(linkedPage.text).to.contain('Your Trello account is linked');
    expect(linkedPage.text).to.contain('Linked to the Trello account <strong>hopper</strong>');
    const stored = await server.registry.trello.linking.findByMemberId(member.id);
    expect(stored).to.include({ linked_account_id: account.id, linked_by: 'manual' });
    expect(await server.registry.trello.linking.retiredOf(account.id)).to.deep.equal(['hopper@trello-era.example']);
    expect((await server.registry.accounts.findById(account.id))?.email).to.equal('me@example.com');

    // No second Trello account, and no unlink.
    const unlink = await submit(agent, '/account/password', '/account/trello/unlink');
    expect(unlink.status).to.equal(409);
    expect(unlink.text).to.contain('Linking can’t be undone');
    expect((await server.registry.trello.linking.findByMemberId(member.id))?.linked_account_id).to.equal(account.id);
  });

  it('answers a full password hashing with the form again, the login kept and no attempt counted (decision 0063)', async () => {
    const account = await createAccount(server.registry, { email: 'busy@example.com' });
    const { agent } = await signInToAccount(server.url, account.email);
    await importLegacy(server.registry, [legacyMember({ username: 'lovelace', emails: [{ address: 'lovelace@trello-era.example', verified: true, primary: true }] })]);
    const before = await attemptsCounted();
    const refusing = refuseHashes(server.registry);
    let busy: supertest.Response;
    try {
      // The Trello password is this form's first hash: refusable, unlike a check after another.
      busy = await submit(agent, '/account/trello', '/account/trello', { login: 'lovelace', password: TRELLO_PASSWORD });
    } finally {
      refusing.restore();
    }
    expect(refusing.refused(), 'the form asked for no refusable hash').to.be.greaterThan(0);
    expectBusyForm(busy, { action: '/account/trello', kept: ['lovelace'], passwords: [TRELLO_PASSWORD] });
    expect(await attemptsCounted(), 'the attempt reserved for the check was given back').to.equal(before);
    const review = await agent.post('/account/trello').type('form').send({ _csrf: csrfFrom(busy.text), login: 'lovelace', password: TRELLO_PASSWORD });
    expect(review.status).to.equal(200);
    expect(review.text).to.contain('Link your Trello account');
  });

  it('costs an unknown Trello login the same bcrypt check as a wrong password, and the same answer', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    await importLegacy(server.registry, [legacyMember({ username: 'babbage' })]);
    const { hasher } = server.registry;
    const compareLegacy = hasher.compareLegacy;
    const compared: Array<string | null | undefined> = [];
    hasher.compareLegacy = (hash, password, options) => { compared.push(hash); return compareLegacy(hash, password, options); };
    try {
      const unknown = await submit(agent, '/account/trello', '/account/trello', { login: 'nobody-here', password: 'a guess' });
      const wrong = await submit(agent, '/account/trello', '/account/trello', { login: 'babbage', password: 'a guess' });
      expect([unknown.status, wrong.status]).to.deep.equal([401, 401]);
      expect(unknown.text.replaceAll('nobody-here', 'X').replace(/name="_csrf" value="[^"]*"/, '')).to.equal(wrong.text.replaceAll('babbage', 'X').replace(/name="_csrf" value="[^"]*"/, ''));
    } finally {
      hasher.compareLegacy = compareLegacy;
    }
    expect(compared.length, 'one check each').to.equal(2);
    expect(compared[0], 'a decoy for the unknown login').to.equal(undefined);
    expect(compared[1]).to.be.a('string');
  });

  it('counts wrong Trello passwords per signed-in account, whichever login is typed, and shows no member’s wait to another account (decision 0076)', async () => {
    const strict = await startTestServer({ overrides: { throttle: { freeAttempts: 2, baseDelaySeconds: 2, maxDelaySeconds: 60, windowSeconds: 3600 } } });
    try {
      const account = await createAccount(strict.registry, { email: 'guesser@example.com' });
      const { agent } = await signInToAccount(strict.url, account.email);
      await importLegacy(strict.registry, [legacyMember({ username: 'turing', emails: [{ address: 'turing@trello-era.example', verified: true, primary: true }, { address: 'alan@trello-era.example', verified: true }] })]);
      expect((await submit(agent, '/account/trello', '/account/trello', { login: 'turing', password: 'guess 1' })).status).to.equal(401);
      expect((await submit(agent, '/account/trello', '/account/trello', { login: 'turing@trello-era.example', password: 'guess 2' })).status).to.equal(401);
      // The member's third login brings no allowance of its own, nor does a login of nobody's.
      const third = await submit(agent, '/account/trello', '/account/trello', { login: 'ALAN@trello-era.example', password: 'guess 3' });
      expect(third.status).to.equal(429);
      expect(third.headers['retry-after']).to.equal('2');
      expect((await submit(agent, '/account/trello', '/account/trello', { login: 'nobody-at-all', password: 'guess' })).status).to.equal(429);
      // A right password of another member — the guesser's own — starts nothing over.
      await importLegacy(strict.registry, [legacyMember({ username: 'mine', emails: [{ address: 'mine@trello-era.example', verified: true, primary: true }] })]);
      expect((await submit(agent, '/account/trello', '/account/trello', { login: 'mine', password: TRELLO_PASSWORD })).status, 'still waiting').to.equal(429);
      // Another account is not held back by this one's failures: the wait names no member, so it
      // cannot tell which logins are one member's.
      const other = await createAccount(strict.registry, { email: 'other@example.com' });
      const { agent: otherAgent } = await signInToAccount(strict.url, other.email);
      expect((await submit(otherAgent, '/account/trello', '/account/trello', { login: 'alan@trello-era.example', password: 'guess' })).status).to.equal(401);
    } finally {
      await strict.close();
    }
  });

  it('answers a linked member’s old password like a wrong one: this form is no place to guess an account’s password', async () => {
    const owner = await createAccount(server.registry, { email: 'owner@example.com' });
    const member = legacyMember({ username: 'linkedone', emails: [{ address: 'linkedone@trello-era.example', verified: true, primary: true }] });
    await importLegacy(server.registry, [member]);
    const linked = await server.registry.trello.linking.link({ memberId: member.id, email: owner.email, method: 'manual', existingAccountId: owner.id }, {});
    expect(linked.ok).to.equal(true);
    const someone = await createAccount(server.registry, { email: 'someone@example.com' });
    const { agent } = await signInToAccount(server.url, someone.email);
    const right = await submit(agent, '/account/trello', '/account/trello', { login: 'linkedone', password: TRELLO_PASSWORD });
    const wrong = await submit(agent, '/account/trello', '/account/trello', { login: 'linkedone', password: 'not it' });
    expect(right.status).to.equal(401);
    expect(wrong.status).to.equal(401);
    const alert = (text: string) => /<div class="alert"[\s\S]*?<\/div>/.exec(text)?.[0];
    expect(alert(right.text)).to.equal(alert(wrong.text));
  });

  it('refuses a replayed or foreign review', async () => {
    const account = await createAccount(server.registry);
    const member = legacyMember();
    await importLegacy(server.registry, [member]);
    const { agent } = await signInToAccount(server.url, account.email);
    const page = await agent.get('/account/trello');
    const blind = await agent.post('/account/trello/link').type('form').send({ _csrf: csrfFrom(page.text) });
    expect(blind.status).to.equal(400);
    expect(blind.text).to.contain('Start again');
  });

  it('answers an unlink request with what is true: nothing linked, or unknown on the API', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const unlink = await submit(agent, '/account/trello', '/account/trello/unlink');
    expect(unlink.status).to.equal(409);
    expect(unlink.text).to.contain('No Trello account is linked');
    expect(unlink.text).not.to.contain('for good');

    const trello = await createClient(server.registry, { clientId: 'trello', firstParty: true });
    const config = await oidc.discovery(new URL(server.url), trello.clientId, trello.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const token = (await oidc.clientCredentialsGrant(config)).access_token;
    const res = await supertest(server.url).delete('/api/trello/members/m1/link').set('Authorization', `Bearer ${token}`).set('Accept', 'application/json');
    expect(res.status).to.equal(404);
    expect(res.body).to.deep.equal({ status: 'unknown' });
  });
});
