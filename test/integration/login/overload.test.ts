import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { startInteraction } from '../../helpers/authorization.ts';
import type { Context } from 'koa';
import { throttled } from '../../../src/flows/throttled.ts';
import { AppError } from '../../../src/shared/errors.ts';
import { importLegacy, legacyMember, TRELLO_PASSWORD } from '../../helpers/trello.ts';

/**
 * Issue 14, "Overload": when the password hashing is full, the password step answers 503 with
 * Retry-After and its form again (decision 0061) before it reads anything or counts the attempt —
 * overload never charges an owner's throttle counter — and a check that found the hashing full
 * after its reservation gives the attempt back.
 */
describe('password step under overload', () => {
  let server: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;

  beforeEach(async () => {
    await resetDatabase();
    // One hash admitted at a time, and a slow one (about a second): while the test's own hash
    // runs, the queue is full.
    server = await startTestServer({ overrides: { passwordHashConcurrency: 1, argon2: { memoryKiB: 65_536, timeCost: 20, parallelism: 1 } } });
    client = await createClient(server.registry, { firstParty: true });
  });
  afterEach(async () => {
    await server.close();
  });

  async function passwordForm(email: string) {
    const agent = supertest.agent(server.url);
    const uid = await startInteraction(agent, client);
    const page = await agent.get(`/interaction/${uid}`);
    return (password: string, csrf = csrfFrom(page.text)) => agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrf, email, password });
  }

  /** The busy answer: 503, Retry-After, and the password form again with the address kept and the password not echoed. */
  function expectBusyForm(busy: supertest.Response, email: string, password: string) {
    expect(busy.status).to.equal(503);
    expect(busy.headers['retry-after']).to.equal('5');
    expect(busy.headers['content-type']).to.match(/^text\/html/);
    expect(busy.headers['cache-control']).to.equal('no-store');
    expect(busy.text).to.contain('Many people are signing in right now');
    expect(busy.text).to.match(/<form method="post" action="\/interaction\/[^"]+\/password"/);
    expect(busy.text).to.contain(`value="${email}"`);
    expect(busy.text).not.to.contain(password);
    expect(csrfFrom(busy.text)).to.be.a('string').and.not.equal('');
  }

  const throttleRows = async () => (await (await testDatabase()).query<{ n: number }>("SELECT count(*)::int AS n FROM throttles WHERE key LIKE 'password:%'")).rows[0]!.n;

  it('answers 503 with Retry-After and a page for people, and counts nothing, while the hashing is full', async () => {
    const account = await createAccount(server.registry);
    const post = await passwordForm(account.email);
    expect(server.registry.hasher.full()).to.equal(false);
    // The queue's one place is taken synchronously by this call, until the hash ends.
    const occupying = server.registry.hasher.hash('occupying the only place');
    expect(server.registry.hasher.full()).to.equal(true);
    const busy = await post(PASSWORD);
    const stillFull = server.registry.hasher.full();
    await occupying;
    expect(stillFull, 'the occupying hash ended before the attempt was answered: the test proves nothing').to.equal(true);
    expectBusyForm(busy, account.email, PASSWORD);
    expect(await throttleRows()).to.equal(0);

    // With room again, the form on the busy page logs in: the person tries again from there.
    const ok = await post(PASSWORD, csrfFrom(busy.text));
    expect(ok.status).to.equal(303);
  });

  it('answers the same when the hashing fills between its look and the hash, and gives the attempt back', async () => {
    const account = await createAccount(server.registry);
    const post = await passwordForm(account.email);
    const occupying = server.registry.hasher.hash('occupying the only place');
    expect(server.registry.hasher.full()).to.equal(true);
    // The step's look says there is room (as when another request takes the last place right
    // after it): the attempt is reserved, then the hash itself is refused.
    const { hasher } = server.registry;
    const look = hasher.full;
    hasher.full = () => false;
    let busy: supertest.Response;
    try {
      busy = await post(PASSWORD);
    } finally {
      hasher.full = look;
    }
    const stillFull = hasher.full();
    await occupying;
    expect(stillFull, 'the occupying hash ended before the attempt was answered: the test proves nothing').to.equal(true);
    expectBusyForm(busy, account.email, PASSWORD);
    const counted = (await (await testDatabase()).query<{ failures: number }>("SELECT failures FROM throttles WHERE key LIKE 'password:%'")).rows;
    expect(counted.length, 'the attempt was reserved before the hash').to.be.greaterThan(0);
    expect(counted.map((r) => r.failures).reduce((a, b) => a + b, 0), 'and given back').to.equal(0);
  });

  it('gives back an attempt whose check found the hashing full, unless another was reserved since', async () => {
    const { throttle } = server.registry;
    const first = await throttle.attempt('password', 'someone@example.com', '192.0.2.1');
    expect(first.ok).to.equal(true);
    const counted = async () => (await (await testDatabase()).query<{ failures: number }>("SELECT failures FROM throttles WHERE key LIKE 'password:s:%'")).rows[0]?.failures;
    expect(await counted()).to.equal(1);
    await throttle.release(first);
    expect(await counted()).to.equal(0);

    // Two attempts reserved; the first's check is refused: the later reservation holds the
    // counter, and the earlier attempt stays counted (it can only hold back a guess).
    const a = await throttle.attempt('password', 'someone@example.com', '192.0.2.1');
    const b = await throttle.attempt('password', 'someone@example.com', '192.0.2.1');
    expect(b.ok).to.equal(true);
    await throttle.release(a);
    expect(await counted()).to.equal(2);
    await throttle.release(b);
    expect(await counted()).to.equal(1);
  });

  it('the throttled sequence gives the attempt back when its check is refused as busy, and passes the 503 on', async () => {
    await resetDatabase();
    const ctx = { ip: '192.0.2.7' } as Context;
    const refused = await throttled(ctx, server.registry.throttle, { scope: 'password', subject: 'busy@example.com' }, async () => { throw new AppError('login.busy', 503); }, () => 'failed')
      .then(() => undefined, (err: unknown) => err);
    expect(refused).to.be.instanceOf(AppError).and.have.property('code', 'login.busy');
    const rows = (await (await testDatabase()).query<{ failures: number }>("SELECT failures FROM throttles WHERE key LIKE 'password:%'")).rows;
    expect(rows.map((r) => r.failures)).to.deep.equal([0]);
  });
});

/**
 * Decision 0056: only a step's first hash can be refused as busy. A later hash of the same step —
 * made after a password was checked — waits its turn, so a 503 never comes after a check. Here
 * every refusable hash is made to fail as a full queue would; the steps must not ask for one.
 * The test argon2 parameters: these steps make several hashes each.
 */
describe('second hashes of a step under overload', () => {
  let server: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;

  beforeEach(async () => {
    await resetDatabase();
    server = await startTestServer();
    client = await createClient(server.registry, { firstParty: true });
  });
  afterEach(async () => {
    await server.close();
  });

  it('never answers busy after a Trello password was checked and found right: the proof’s hash waits its turn', async () => {
    const member = legacyMember();
    await importLegacy(server.registry, [member]);
    const email = (member.emails as { address: string }[])[0]!.address;
    const agent = supertest.agent(server.url);
    const uid = await startInteraction(agent, client);
    const page = await agent.get(`/interaction/${uid}`);
    // Any hash asked for after the step's first check finds the queue full, as when other logins
    // take every place while this one's argon2 and bcrypt checks run.
    const { hasher } = server.registry;
    const refusable = hasher.hash;
    let refused = 0;
    hasher.hash = async () => {
      refused += 1;
      throw new AppError('login.busy', 503);
    };
    let res: supertest.Response;
    try {
      res = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(page.text), email, password: TRELLO_PASSWORD });
    } finally {
      hasher.hash = refusable;
    }
    expect(refused, 'no refusable hash after the check').to.equal(0);
    expect(res.status).to.equal(303);
    expect(res.headers.location).to.match(/\/trello\/(review|prove)$/);
  });

  it('never refuses the new password’s hash of a change or a renewal, made after the current password was checked', async () => {
    const account = await createAccount(server.registry);
    const { hasher, passwordResets } = server.registry;
    const refusable = hasher.hash;
    let refused = 0;
    hasher.hash = async () => {
      refused += 1;
      throw new AppError('login.busy', 503);
    };
    try {
      const changed = await passwordResets.change(account.id, PASSWORD, 'a new passphrase, long enough 4821', 'no-session-kept');
      expect(changed).to.deep.equal({ ok: true });
      const renewed = await passwordResets.renew(account.id, 'another passphrase, long enough 9357', undefined);
      expect(renewed).to.deep.equal({ ok: true });
    } finally {
      hasher.hash = refusable;
    }
    expect(refused, 'no refusable hash after a check').to.equal(0);
    expect((await server.registry.accounts.authenticate(account.email, 'another passphrase, long enough 9357')).ok).to.equal(true);
  });
});
