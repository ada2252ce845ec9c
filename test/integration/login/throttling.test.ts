import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { startInteraction } from '../../helpers/authorization.ts';
import { enrolTwoStep, passPassword } from '../../helpers/two-step.ts';
import type { Clock } from '../../../src/shared/clock.ts';

/** Small numbers so a test makes few argon2 verifications: 2 free per address, 20 per client address. */
const THROTTLE = { freeAttempts: 2, baseDelaySeconds: 2, maxDelaySeconds: 60, windowSeconds: 3600 };

describe('brute-force throttling', () => {
  let now = Date.now();
  const clock: Clock = { now: () => now };
  let a: TestServer;
  let b: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;

  beforeEach(async () => {
    await resetDatabase();
    now = Date.now();
    // Two instances of one deployment on one database.
    a = await startTestServer({ clock, overrides: { throttle: THROTTLE } });
    b = await startTestServer({ clock, overrides: { throttle: THROTTLE } });
    client = await createClient(a.registry, { firstParty: true });
  });
  afterEach(async () => {
    await a.close();
    await b.close();
  });

  /** One password attempt on `server` from a client address given by X-Forwarded-For (TRUST_PROXY is off: ignored). */
  async function attempt(server: TestServer, email: string, password: string) {
    const agent = supertest.agent(server.url);
    const uid = await startInteraction(agent, client);
    const page = await agent.get(`/interaction/${uid}`);
    return agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(page.text), email, password });
  }

  const visible = (res: supertest.Response) => ({
    status: res.status,
    retryAfter: res.headers['retry-after'],
    alert: /<div class="alert"[\s\S]*?<\/div>/.exec(res.text)?.[0],
  });

  it('makes the third wrong password wait, doubling the wait with each failure, up to the ceiling', async () => {
    const account = await createAccount(a.registry);
    expect((await attempt(a, account.email, 'wrong 1')).status).to.equal(401);
    expect((await attempt(a, account.email, 'wrong 2')).status).to.equal(401);
    const third = await attempt(a, account.email, 'wrong 3');
    expect(third.status).to.equal(429);
    expect(third.headers['retry-after']).to.equal('2');
    expect(third.text).to.contain('Too many attempts');
    expect(third.text).to.contain('wait 2 seconds');

    // Even the right password waits: a guess made now tells nothing.
    const blocked = await attempt(a, account.email, PASSWORD);
    expect(blocked.status).to.equal(429);

    now += 2_000;
    expect((await attempt(a, account.email, 'wrong 4')).headers['retry-after']).to.equal('4');
    now += 4_000;
    expect((await attempt(a, account.email, 'wrong 5')).headers['retry-after']).to.equal('8');
    for (let i = 0; i < 5; i += 1) {
      now += 60_000;
      await attempt(a, account.email, `wrong ${6 + i}`);
    }
    now += 60_000;
    const capped = await attempt(a, account.email, 'wrong again');
    expect(capped.headers['retry-after']).to.equal('60');
    expect(capped.text).to.contain('wait 1 minute');
  });

  it('never locks out for good: after the wait the right password logs in and the count starts over', async () => {
    const account = await createAccount(a.registry);
    for (const guess of ['x1', 'x2', 'x3']) await attempt(a, account.email, guess);
    expect((await attempt(a, account.email, PASSWORD)).status).to.equal(429);
    now += 3_000;
    expect((await attempt(a, account.email, PASSWORD)).status).to.equal(303);
    // Counter cleared: two more wrong passwords are free again.
    expect((await attempt(a, account.email, 'y1')).status).to.equal(401);
    expect((await attempt(a, account.email, 'y2')).status).to.equal(401);
  });

  it('throttles an unknown address exactly like a known one', async () => {
    const account = await createAccount(a.registry);
    const known: ReturnType<typeof visible>[] = [];
    const unknown: ReturnType<typeof visible>[] = [];
    for (let i = 0; i < 4; i += 1) {
      known.push(visible(await attempt(a, account.email, `guess ${i}`)));
      unknown.push(visible(await attempt(a, 'nobody-at-all@example.com', `guess ${i}`)));
    }
    expect(known.map((r) => r.status)).to.deep.equal([401, 401, 429, 429]);
    expect(unknown).to.deep.equal(known);
  });

  it('shares the counters between instances on one database', async () => {
    const account = await createAccount(a.registry);
    await attempt(a, account.email, 'one');
    await attempt(b, account.email, 'two');
    const third = await attempt(a, account.email, 'three');
    expect(third.status).to.equal(429);
    const onB = await attempt(b, account.email, PASSWORD);
    expect(onB.status).to.equal(429);
    expect(Number(onB.headers['retry-after'])).to.be.within(1, 2);
  });

  it('counts failures per client address across many accounts', async () => {
    // 20 failures from one address against 20 different addresses: none is throttled by itself,
    // the client address is.
    let last: supertest.Response | undefined;
    for (let i = 0; i < 21; i += 1) last = await attempt(a, `spray-${i}@example.com`, 'Summer2026!');
    expect(last!.status).to.equal(429);
    const account = await createAccount(a.registry);
    expect((await attempt(b, account.email, PASSWORD)).status).to.equal(429);
  });

  it('lets only the allowance through when many guesses arrive at once', async () => {
    const account = await createAccount(a.registry);
    // Ten guesses in parallel, over both instances: each is counted before its password is checked.
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => attempt(i % 2 ? a : b, account.email, `parallel ${i}`)));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 401), statuses.join(' ')).to.have.length(2);
    expect(statuses.filter((s) => s === 429)).to.have.length(8);
    const checked = (await a.registry.events.page(account.id, { limit: 20 })).events.filter((e) => e.reason === 'wrong_password');
    expect(checked, 'passwords actually checked: the two free ones and the one that started the wait').to.have.length(3);
  });

  it('keeps counting after a very long run of failures (the doubling never overflows)', async () => {
    const account = await createAccount(a.registry);
    await attempt(a, account.email, 'first');
    await a.registry.db.query("UPDATE throttles SET failures = 100000, blocked_until = NULL WHERE key LIKE 'password:s:%'");
    const res = await attempt(a, account.email, 'again');
    expect(res.status).to.equal(429);
    expect(res.headers['retry-after']).to.equal('60');
  });

  it('records throttled and failed attempts in the audit trail with their reason', async () => {
    const account = await createAccount(a.registry);
    for (const guess of ['p1', 'p2', 'p3', 'p4']) await attempt(a, account.email, guess);
    const reasons = (await a.registry.events.page(account.id, { limit: 10 })).events.map((e) => e.reason);
    expect(reasons).to.deep.equal(['throttled', 'wrong_password', 'wrong_password', 'wrong_password']);
  });

  it('throttles wrong two-step codes per account', async () => {
    const account = await createAccount(a.registry);
    await enrolTwoStep(a.registry, account);
    const flow = await passPassword(a.url, client, account.email);
    const send = (code: string) => flow.agent.post(`/interaction/${flow.uid}/two-step`).type('form').send({ _csrf: csrfFrom(flow.page.text), code });
    expect((await send('000000')).status).to.equal(401);
    expect((await send('111111')).status).to.equal(401);
    const third = await send('222222');
    expect(third.status).to.equal(429);
    expect(third.text).to.contain('Too many attempts');
    expect((await send('333333')).status).to.equal(429);
  });

  it('limits password-reset mails per address without refusing the request or telling whether it has an account', async () => {
    const account = await createAccount(a.registry);
    const request = async (email: string) => {
      const agent = supertest.agent(a.url);
      const form = await agent.get('/password/forgot');
      const posted = await agent.post('/password/forgot').type('form').send({ _csrf: csrfFrom(form.text), email });
      // "Check your email" is a page of its own (Post/Redirect/Get); a refusal answers at once.
      const res = posted.status === 303 ? await agent.get(posted.headers.location!) : posted;
      await a.registry.background.idle();
      return res;
    };
    const queued = async () => (await a.registry.db.query<{ n: number }>("SELECT count(*)::int AS n FROM mail_outbox WHERE template = 'password-reset'")).rows[0]!.n;
    const known = [];
    for (let i = 0; i < 4; i += 1) known.push((await request(account.email)).status);
    const unknown = [];
    for (let i = 0; i < 4; i += 1) unknown.push((await request('ghost@example.com')).status);
    // The address's counter holds mails back; only a client address's counter refuses (429).
    expect(known).to.deep.equal([200, 200, 200, 200]);
    expect(unknown).to.deep.equal(known);
    expect(await queued(), 'two free requests and the one that started the wait mailed, the fourth held back').to.equal(3);
  });

  it('throttles sign-up requests per address and wrong sign-up codes per sign-up', async () => {
    const agent = supertest.agent(a.url);
    const uid = await startInteraction(agent, client);
    const form = await agent.get(`/interaction/${uid}/signup`);
    const start = () => agent.post(`/interaction/${uid}/signup`).type('form').send({ _csrf: csrfFrom(form.text), email: 'new-person@example.com' });
    // Going ahead is the 303 to "Check your email"; a wait is 429 on the form.
    expect((await start()).status).to.equal(303);
    expect((await start()).status).to.equal(303);
    // The one that starts the wait still goes ahead; the next waits.
    expect((await start()).status).to.equal(303);
    expect((await start()).status).to.equal(429);
    await a.registry.background.idle();

    const code = (c: string) => agent.post(`/interaction/${uid}/signup/code`).type('form').send({ _csrf: csrfFrom(form.text), code: c });
    expect((await code('000000')).status).to.equal(400);
    expect((await code('000001')).status).to.equal(400);
    expect((await code('000002')).status).to.equal(429);
  });
});
