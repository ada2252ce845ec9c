import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { startInteraction } from '../../helpers/authorization.ts';
import { startSmtp, linkIn, type TestSmtp } from '../../helpers/smtp.ts';
import { importLegacy, legacyMember } from '../../helpers/trello.ts';
import type { Clock } from '../../../src/shared/clock.ts';

/** Small numbers: 2 free failures per address, 20 per client address, waits up to a minute. */
const THROTTLE = { freeAttempts: 2, baseDelaySeconds: 2, maxDelaySeconds: 60, windowSeconds: 86_400 };

type Agent = ReturnType<typeof supertest.agent>;

/**
 * What an attacker could steer in the throttle (issue: hardening): the client address taken from
 * a header the client writes, a stranger keeping the owner waiting, an office blocked by one
 * person, a retired address answering differently.
 */
describe('throttling an attacker cannot steer', () => {
  let now = Date.now();
  const clock: Clock = { now: () => now };
  let smtp: TestSmtp;
  let server: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;

  async function start(trustProxy: number) {
    server = await startTestServer({ clock, overrides: { throttle: THROTTLE, trustProxy, smtpUrl: smtp.url } });
    client = await createClient(server.registry, { firstParty: true });
  }

  beforeEach(async () => {
    await resetDatabase();
    now = Date.now();
    smtp = await startSmtp();
  });
  afterEach(async () => {
    await server?.close();
    await smtp.close();
  });

  /**
   * One password attempt in `agent` (a browser: it keeps its cookies), its request carrying
   * `forwardedFor` as X-Forwarded-For — what the proxies in front wrote, the client's part first.
   */
  async function attempt(agent: Agent, email: string, password: string, forwardedFor?: string) {
    // prompt=login: a browser that signed in before is asked for its password again.
    const uid = await startInteraction(agent, client, { prompt: 'login' });
    const page = await agent.get(`/interaction/${uid}`);
    const post = agent.post(`/interaction/${uid}/password`).type('form');
    if (forwardedFor) post.set('X-Forwarded-For', forwardedFor);
    return post.send({ _csrf: csrfFrom(page.text), email, password });
  }
  const browser = () => supertest.agent(server.url);

  describe('client address behind trusted proxies (TRUST_PROXY hops)', () => {
    it('ignores addresses a client writes into X-Forwarded-For: rotating them does not escape the per-address limit', async () => {
      await start(1);
      // The one proxy appends the address it saw (198.51.100.66) to whatever the client sent.
      let last: supertest.Response | undefined;
      for (let i = 0; i < 21; i += 1) last = await attempt(browser(), `spray-${i}@example.com`, 'Summer2026!', `10.9.8.${i}, 198.51.100.66`);
      expect(last!.status).to.equal(429);
    });

    it('does not let a client pin its failures on a victim’s address', async () => {
      await start(1);
      for (let i = 0; i < 21; i += 1) await attempt(browser(), `spray-${i}@example.com`, 'Summer2026!', `203.0.113.7, 198.51.100.66`);
      const victim = await createAccount(server.registry);
      // The victim's own request: the proxy saw 203.0.113.7.
      expect((await attempt(browser(), victim.email, PASSWORD, '203.0.113.7')).status).to.equal(303);
    });

    it('records the address the outermost trusted proxy saw, behind one and behind two proxies', async () => {
      for (const [hops, header] of [[1, 'spoofed, 192.0.2.10'], [2, 'spoofed, 192.0.2.10, 10.0.0.2']] as const) {
        await start(hops);
        const account = await createAccount(server.registry, { email: `hops-${hops}@example.com` });
        await attempt(browser(), account.email, 'wrong', header);
        const [event] = (await server.registry.events.page(account.id, { limit: 1 })).events;
        expect(event?.ip, `${hops} hop(s)`).to.equal('192.0.2.10');
        await server.close();
      }
      server = await startTestServer({ clock });
    });

    it('ignores X-Forwarded-For entirely without a trusted proxy', async () => {
      await start(0);
      const account = await createAccount(server.registry);
      await attempt(browser(), account.email, 'wrong', '192.0.2.10');
      const [event] = (await server.registry.events.page(account.id, { limit: 1 })).events;
      expect(event?.ip).to.match(/127\.0\.0\.1$/);
    });
  });

  describe('device cookies', () => {
    it('lets the owner in from a browser that signed in before, while a stranger’s failures keep others waiting', async () => {
      await start(1);
      const owner = await createAccount(server.registry);
      const ownBrowser = browser();
      expect((await attempt(ownBrowser, owner.email, PASSWORD, '192.0.2.1')).status).to.equal(303);

      // A stranger, from fresh addresses every time, makes the address wait as long as it can.
      for (let i = 0; i < 13; i += 1) {
        now += 20_000;
        await attempt(browser(), owner.email, `guess ${i}`, `198.51.100.${i + 1}`);
      }
      expect((await attempt(browser(), owner.email, PASSWORD, '192.0.2.1')).status, 'a browser that never signed in waits').to.equal(429);
      expect((await attempt(ownBrowser, owner.email, PASSWORD, '192.0.2.1')).status, 'the owner’s browser does not').to.equal(303);
    });

    it('gives a known browser its own allowance, not an unlimited one', async () => {
      await start(0);
      const owner = await createAccount(server.registry);
      const ownBrowser = browser();
      await attempt(ownBrowser, owner.email, PASSWORD);
      const statuses = [];
      for (let i = 0; i < 4; i += 1) statuses.push((await attempt(ownBrowser, owner.email, `wrong ${i}`)).status);
      expect(statuses).to.deep.equal([401, 401, 429, 429]);
    });

    it('does not trust a device cookie that was altered or names another address', async () => {
      await start(0);
      const owner = await createAccount(server.registry);
      const other = await createAccount(server.registry, { email: 'other@example.com' });
      const ownBrowser = browser();
      await attempt(ownBrowser, owner.email, PASSWORD);
      for (let i = 0; i < 3; i += 1) await attempt(browser(), other.email, `guess ${i}`);
      // The cookie names the owner's address only.
      expect((await attempt(ownBrowser, other.email, PASSWORD)).status).to.equal(429);

      const stolen = browser();
      const cookie = ownBrowser.jar.getCookie('lanyard.device', { domain: '127.0.0.1', path: '/', secure: false, script: false });
      expect(cookie, 'the device cookie').to.not.equal(undefined);
      stolen.jar.setCookie(`lanyard.device=${cookie!.value.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))}; Path=/`, '127.0.0.1', '/');
      for (let i = 0; i < 3; i += 1) await attempt(browser(), owner.email, `guess ${i}`);
      expect((await attempt(stolen, owner.email, PASSWORD)).status, 'an altered cookie is not trusted').to.equal(429);
    });
  });

  it('does not block an office behind one address because of one person’s failures', async () => {
    await start(1);
    const forgetful = await createAccount(server.registry, { email: 'forgetful@example.com' });
    const colleague = await createAccount(server.registry, { email: 'colleague@example.com' });
    // More failures in a day from one person than the client address's allowance (20 here; 50
    // with the default settings), each after the previous wait.
    for (let i = 0; i < 25; i += 1) {
      now += 61_000;
      await attempt(browser(), forgetful.email, `not it ${i}`, '192.0.2.99');
    }
    expect((await attempt(browser(), colleague.email, PASSWORD, '192.0.2.99')).status).to.equal(303);
  });

  describe('password reset requests', () => {
    async function forgot(agent: Agent, email: string, forwardedFor: string) {
      const form = await agent.get('/password/forgot');
      const posted = await agent.post('/password/forgot').type('form').set('X-Forwarded-For', forwardedFor).send({ _csrf: csrfFrom(form.text), email });
      // "Check your email" is a page of its own (Post/Redirect/Get); a refusal answers at once.
      const res = posted.status === 303 ? await agent.get(posted.headers.location!).set('X-Forwarded-For', forwardedFor) : posted;
      await server.registry.background.idle();
      await server.registry.mail.delivery.deliverDue();
      return res;
    }
    const resetMails = (to: string) => smtp.messages.filter((m) => m.subject?.startsWith('Reset') && (Array.isArray(m.to) ? m.to : [m.to]).some((t) => t?.value.some((v) => v.address === to)));

    it('cannot be blocked by a stranger: the owner is never refused, and the newest link mailed works', async () => {
      await start(1);
      const owner = await createAccount(server.registry);
      for (let i = 0; i < 6; i += 1) await forgot(browser(), owner.email, `198.51.100.${i + 1}`);
      const sentByStranger = resetMails(owner.email).length;
      expect(sentByStranger, 'mails are limited per address').to.be.within(1, 3);

      const ownBrowser = browser();
      const res = await forgot(ownBrowser, owner.email, '192.0.2.1');
      expect(res.status).to.equal(200);
      expect(res.text).to.contain('Check your email');
      const newest = resetMails(owner.email).at(-1)!;
      const link = new URL(linkIn(newest, `${server.url}/password/reset`));
      const page = await ownBrowser.get(link.pathname + link.search);
      expect(page.status).to.equal(200);
      const done = await ownBrowser.post('/password/reset').type('form').send({ _csrf: csrfFrom(page.text), token: link.searchParams.get('token'), password: 'a whole new passphrase' });
      expect([done.status, done.headers.location]).to.deep.equal([303, '/password/reset/done']);
    });

    it('keeps mailing the owner after each wait, however long a stranger keeps asking', async () => {
      await start(1);
      const owner = await createAccount(server.registry);
      // A stranger asks again and again, from fresh addresses, each time a wait has run out.
      for (let i = 0; i < 8; i += 1) {
        await forgot(browser(), owner.email, `198.51.100.${i + 1}`);
        now += 61_000;
      }
      const before = resetMails(owner.email).length;
      expect(before, 'every request made after a wait sent its mail').to.equal(8);
      // The owner, on a new browser, after the current wait: a new mail, with a working link.
      const ownBrowser = browser();
      await forgot(ownBrowser, owner.email, '192.0.2.1');
      expect(resetMails(owner.email).length).to.equal(before + 1);
      const link = new URL(linkIn(resetMails(owner.email).at(-1)!, `${server.url}/password/reset`));
      expect((await ownBrowser.get(link.pathname + link.search)).status).to.equal(200);
    });

    it('sends a fresh link to a browser that signed in with the address before', async () => {
      await start(1);
      const owner = await createAccount(server.registry);
      const ownBrowser = browser();
      await attempt(ownBrowser, owner.email, PASSWORD, '192.0.2.1');
      for (let i = 0; i < 6; i += 1) await forgot(browser(), owner.email, `198.51.100.${i + 1}`);
      const before = resetMails(owner.email).length;
      await forgot(ownBrowser, owner.email, '192.0.2.1');
      expect(resetMails(owner.email).length).to.equal(before + 1);
    });

    it('tells a retired address’s account which address to use, rate-limited', async () => {
      await start(0);
      const member = legacyMember({ emails: [{ address: 'kept@example.com', verified: true, primary: true }, { address: 'gone@example.com', verified: true }] });
      await importLegacy(server.registry, [member]);
      await server.registry.trello.linking.link({ memberId: member.id, email: 'kept@example.com', method: 'bulk' });
      await server.registry.mail.delivery.deliverDue();
      const before = smtp.messages.length;
      for (let i = 0; i < 4; i += 1) expect((await forgot(browser(), 'gone@example.com', '192.0.2.1')).status).to.equal(200);
      const notices = smtp.messages.slice(before).filter((m) => m.subject === 'Log in to Lanyard with kept@example.com');
      // Each notice goes to both addresses; two free requests and the one that starts the wait.
      expect(notices.length).to.equal(6);
    });
  });

  describe('retired addresses at login', () => {
    beforeEach(async () => {
      await start(0);
      const member = legacyMember({ emails: [{ address: 'kept@example.com', verified: true, primary: true }, { address: 'gone@example.com', verified: true }] });
      await importLegacy(server.registry, [member]);
      await server.registry.trello.linking.link({ memberId: member.id, email: 'kept@example.com', method: 'bulk' });
      await createAccount(server.registry, { email: 'known@example.com' });
    });

    /** The page as anyone would compare it: without the values that differ per request. */
    const shape = (res: supertest.Response, email: string) => ({
      status: res.status,
      retryAfter: res.headers['retry-after'],
      body: res.text.replaceAll(email, 'EMAIL').replaceAll(encodeURIComponent(email), 'EMAIL').replace(/[A-Za-z0-9_-]{20,}/g, 'TOKEN'),
    });

    it('answers a retired address exactly like an unknown address and a wrong password, and throttles it alike', async () => {
      const answers: Record<string, ReturnType<typeof shape>[]> = { 'gone@example.com': [], 'unknown@example.com': [], 'known@example.com': [] };
      for (let i = 0; i < 4; i += 1) {
        for (const email of Object.keys(answers)) answers[email]!.push(shape(await attempt(browser(), email, `guess ${i}`), email));
      }
      expect(answers['gone@example.com']!.map((a) => a.status)).to.deep.equal([401, 401, 429, 429]);
      expect(answers['gone@example.com']).to.deep.equal(answers['unknown@example.com']);
      expect(answers['gone@example.com']).to.deep.equal(answers['known@example.com']);
    });

    it('still mails the notice to every address of the account', async () => {
      const before = smtp.messages.length;
      await attempt(browser(), 'gone@example.com', 'anything');
      await server.registry.background.idle();
      await server.registry.mail.delivery.deliverDue();
      const notices = smtp.messages.slice(before).filter((m) => m.subject === 'Log in to Lanyard with kept@example.com');
      expect(notices.flatMap((m) => (Array.isArray(m.to) ? m.to : [m.to]).flatMap((t) => t?.value.map((v) => v.address)))).to.have.members(['kept@example.com', 'gone@example.com']);
    });
  });
});
