import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { startInteraction } from '../../helpers/authorization.ts';
import { importLegacy, legacyMember } from '../../helpers/trello.ts';

/**
 * No account enumeration (docs/security.md): for every form that takes an address, a known
 * address, an unknown one and a retired one get the same status and the same page, and take
 * about the same time. Timing is compared by distribution, interleaved so that load on the
 * machine hits every kind alike, with a tolerance wide enough for a loaded CI machine and narrow
 * enough to catch a skipped password hash (the difference between ~1 ms and tens of ms).
 */
describe('no account enumeration', () => {
  let server: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;
  const KNOWN = 'known@example.com';
  const UNKNOWN = 'unknown@example.com';
  const RETIRED = 'retired@example.com';
  const ADDRESSES = [KNOWN, UNKNOWN, RETIRED];

  before(async () => {
    await resetDatabase();
    // No throttling in the way: every sample must reach the check it measures.
    server = await startTestServer({ overrides: { throttle: { freeAttempts: 100, baseDelaySeconds: 1, maxDelaySeconds: 60, windowSeconds: 3600 } } });
    client = await createClient(server.registry, { firstParty: true });
    await createAccount(server.registry, { email: KNOWN });
    const member = legacyMember({ emails: [{ address: 'kept@example.com', verified: true, primary: true }, { address: RETIRED, verified: true }] });
    await importLegacy(server.registry, [member]);
    await server.registry.trello.linking.link({ memberId: member.id, email: 'kept@example.com', method: 'bulk' });
  });
  after(async () => {
    await server.close();
  });

  /** What an observer compares: status, Retry-After, and the page without per-request values. */
  const shape = (res: supertest.Response, email: string) => ({
    status: res.status,
    retryAfter: res.headers['retry-after'],
    body: res.text.replaceAll(email, 'EMAIL').replaceAll(encodeURIComponent(email), 'EMAIL').replace(/[A-Za-z0-9_-]{20,}/g, 'TOKEN'),
  });

  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)]!;
  };

  /** Median times per address must lie within 40 % of the slowest (+10 ms for timer and scheduling noise). */
  function expectSimilarTimes(times: Record<string, number[]>) {
    const medians = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
    const slowest = Math.max(...Object.values(medians));
    const fastest = Math.min(...Object.values(medians));
    expect(slowest - fastest, `medians (ms): ${JSON.stringify(medians)}`).to.be.at.most(slowest * 0.4 + 10);
  }

  /** Runs `send` for each address in turn, `rounds` times, interleaved; returns shapes and times. */
  async function sample(rounds: number, send: (email: string) => Promise<{ res: supertest.Response; ms: number }>) {
    const shapes: Record<string, ReturnType<typeof shape>[]> = {};
    const times: Record<string, number[]> = {};
    for (let i = 0; i < rounds; i += 1) {
      for (const email of ADDRESSES) {
        // The work an answer leaves in the background (mail, lookups) must not slow the next one.
        await server.registry.background.idle();
        const { res, ms } = await send(email);
        (shapes[email] ??= []).push(shape(res, email));
        (times[email] ??= []).push(ms);
      }
    }
    return { shapes, times };
  }

  async function timed(request: supertest.Test) {
    const started = performance.now();
    const res = await request;
    return { res, ms: performance.now() - started };
  }

  it('login: the email step and a wrong password answer alike for known, unknown and retired addresses', async () => {
    const { shapes, times } = await sample(9, async (email) => {
      const agent = supertest.agent(server.url);
      const uid = await startInteraction(agent, client);
      const page = await agent.get(`/interaction/${uid}`);
      const identify = await agent.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(page.text), email }).redirects(1);
      expect(identify.status).to.equal(200);
      return timed(agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(identify.text), email, password: 'not the password' }));
    });
    expect(shapes[KNOWN]![0]!.status).to.equal(401);
    expect(shapes[UNKNOWN]).to.deep.equal(shapes[KNOWN]);
    expect(shapes[RETIRED]).to.deep.equal(shapes[KNOWN]);
    expectSimilarTimes(times);
  });

  it('password reset: the request answers alike for known, unknown and retired addresses', async () => {
    const { shapes, times } = await sample(9, async (email) => {
      const agent = supertest.agent(server.url);
      const form = await agent.get('/password/forgot');
      return timed(agent.post('/password/forgot').type('form').send({ _csrf: csrfFrom(form.text), email }));
    });
    await server.registry.background.idle();
    // The answer is the 303 to "Check your email", whose page shows only what was typed.
    expect(shapes[KNOWN]![0]!.status).to.equal(303);
    expect(shapes[UNKNOWN]).to.deep.equal(shapes[KNOWN]);
    expect(shapes[RETIRED]).to.deep.equal(shapes[KNOWN]);
    expectSimilarTimes(times);
  });

  it('sign-up: starting with a known, unknown or retired address answers alike', async () => {
    const { shapes, times } = await sample(9, async (email) => {
      const agent = supertest.agent(server.url);
      const uid = await startInteraction(agent, client);
      const form = await agent.get(`/interaction/${uid}/signup`);
      return timed(agent.post(`/interaction/${uid}/signup`).type('form').send({ _csrf: csrfFrom(form.text), email }));
    });
    await server.registry.background.idle();
    expect(shapes[KNOWN]![0]!.status).to.equal(303);
    expect(shapes[UNKNOWN]).to.deep.equal(shapes[KNOWN]);
    expect(shapes[RETIRED]).to.deep.equal(shapes[KNOWN]);
    expectSimilarTimes(times);
  });
});
