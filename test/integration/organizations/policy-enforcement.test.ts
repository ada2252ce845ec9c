import { expect } from 'chai';
import supertest from 'supertest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom, followSteps } from '../../helpers/login-driver.ts';
import { startSmtp, linkIn, type TestSmtp } from '../../helpers/smtp.ts';
import { startLogoutReceiver } from '../../helpers/receiver.ts';
import { postForm, signInToAccount, submit, type Agent } from '../../helpers/account-pages.ts';
import { enrolTwoStep, totpAt } from '../../helpers/two-step.ts';
import { startInteraction } from '../../helpers/authorization.ts';
import { ACR_TWO_FACTORS } from '../../../src/policy/levels.ts';
import { MANAGE_ORGANIZATIONS_SCOPE } from '../../../src/identity/claims-release.ts';
import type { PolicyInput } from '../../../src/organizations/authentication-policies.ts';
import { expectBusyForm, refuseHashes } from '../../helpers/busy.ts';

/**
 * An organization's authentication policies enforced end to end (issue 13): accounts on its
 * verified domain follow its policies, and every path a person or an app takes is held to them —
 * the login pages, password reset and sign-up, settings, token refresh and the management API —
 * through the real pages, openid-client and a real SMTP server.
 *
 * The clock: the decision point reads the server's clock, and the engine stamps logins and
 * tokens with its own (Date.now). Both move together here: Date.now is shifted by `offset` for
 * these tests (and restored after), so "an hour later" is an hour later for the engine, the
 * tokens, the session records and the decision point alike.
 */
describe('organizations: authentication policies enforced on every path', () => {
  let smtp: TestSmtp;
  let server: TestServer;
  let receiver: Awaited<ReturnType<typeof startLogoutReceiver>>;
  let offset = 0;
  const realNow = Date.now;
  const MINUTE = 60_000;
  let n = 0;
  const unique = () => `${realNow().toString(36)}${(n += 1)}`;

  before(async () => {
    Date.now = () => realNow() + offset;
    receiver = await startLogoutReceiver();
  });
  after(async () => {
    Date.now = realNow;
    await receiver.close();
  });
  beforeEach(async () => {
    offset = 0;
    receiver.deliveries.length = 0;
    await resetDatabase();
    smtp = await startSmtp();
    server = await startTestServer({ overrides: { smtpUrl: smtp.url } });
  });
  afterEach(async () => {
    await server.close();
    await smtp.close();
  });

  /** An organization holding `domain` (verified), its admin on another domain, and its first policy (the default). */
  async function organization(settings: PolicyInput | undefined, domain = `acme-${unique()}.example`) {
    const { db, organizations } = server.registry;
    const admin = await createAccount(server.registry, { email: `admin-${unique()}@admins.example` });
    const created = await organizations.service.create(admin.id, 'Acme');
    if (!created.ok) throw new Error(created.problem);
    const org = created.organization;
    await db.query(
      `INSERT INTO organization_domains (id, organization_id, domain, verification_token, state, method, added_at, added_by, verified_at)
       VALUES ($1, $2, $3, 'token', 'verified', 'dns', now(), $4, now())`,
      [`dom_${unique()}`, org.id, domain, admin.id],
    );
    let policyId: string | undefined;
    if (settings) policyId = await newPolicy(admin.id, org.id, settings);
    return { admin, org, domain, policyId };
  }

  async function newPolicy(adminId: string, orgId: string, settings: PolicyInput) {
    const made = await server.registry.organizations.policies.create(adminId, orgId, settings);
    if (!made.ok) throw new Error(made.problem);
    return made.policy.id;
  }

  /**
   * A company identity provider as the connectors' branch stores it (a minimal row: the
   * connector strategy is not part of this branch), tested once so a policy may name it.
   */
  async function connector(orgId: string, adminId: string) {
    const id = `con_${unique()}`;
    await server.registry.db.query(
      `INSERT INTO connectors (id, organization_id, kind, name, config, enabled, created_at, created_by, updated_at, last_success_at)
       VALUES ($1, $2, 'oidc', 'Acme Okta', '{}'::jsonb, true, now(), $3, now(), now())`,
      [id, orgId, adminId],
    );
    return id;
  }

  /** A relying party with openid-client. */
  async function relyingParty(extra: { backchannelLogoutUri?: string } = {}) {
    const client = await createClient(server.registry, { firstParty: true, name: 'Jira', ...extra });
    const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    return { client, config };
  }

  async function authorizationRequest(config: oidc.Configuration, redirectUri: string, extra: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: 'openid email offline_access', prompt: 'consent', state,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra,
    });
    return { url, checks: { pkceCodeVerifier: verifier, expectedState: state } };
  }

  /**
   * Follows an authorization through the real pages as a browser without JavaScript: the
   * address, the password, the code when `code` is given, consent. Stops at any other page
   * (enrolment, an expired password) and returns it.
   */
  async function browse(agent: Agent, start: string, login: { email: string; password?: string; code?: () => Promise<string> }) {
    let location = start;
    for (let step = 0; step < 15; step += 1) {
      const target = new URL(location, server.url);
      if (target.origin !== server.url) return { callback: target };
      const res = await agent.get(target.pathname + target.search);
      if (res.status === 302 || res.status === 303) {
        location = res.headers.location!;
        continue;
      }
      const uid = /^\/interaction\/([^/]+)$/.exec(target.pathname)?.[1];
      if (res.status !== 200 || !uid) return { page: res, path: target.pathname };
      let done;
      if (res.text.includes(`/interaction/${uid}/consent`)) {
        done = await agent.post(`/interaction/${uid}/consent`).type('form').send({ _csrf: csrfFrom(res.text) });
      } else {
        const identify = await followSteps(agent, await agent.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(res.text), email: login.email }));
        if (identify.status !== 200) return { page: identify, path: `/interaction/${uid}/identify` };
        done = await followSteps(agent, await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(identify.text), email: login.email, password: login.password ?? PASSWORD }));
        if (done.status === 200 && done.text.includes(`/interaction/${uid}/two-step`) && login.code) {
          done = await agent.post(`/interaction/${uid}/two-step`).type('form').send({ _csrf: csrfFrom(done.text), code: await login.code() });
        }
      }
      if (done.status !== 303) return { page: done, path: target.pathname };
      location = done.headers.location!;
    }
    throw new Error('authorization did not finish');
  }

  /** Signs in through the pages and exchanges the code: the tokens, and the browser that holds the session. */
  async function signIn(rp: Awaited<ReturnType<typeof relyingParty>>, email: string, options: { password?: string; extra?: Record<string, string> } = {}) {
    const agent = supertest.agent(server.url);
    const { url, checks } = await authorizationRequest(rp.config, rp.client.redirectUri, options.extra);
    const result = await browse(agent, url.pathname + url.search, { email, ...(options.password ? { password: options.password } : {}) });
    if (!result.callback) throw new Error(`the login stopped at ${result.path}: ${result.page?.status} ${result.page?.text.slice(0, 300)}`);
    const tokens = await oidc.authorizationCodeGrant(rp.config, result.callback, checks);
    return { agent, tokens };
  }

  /** What /auth does with this browser's session now: straight back to the app, or the login page. */
  async function reuse(agent: Agent, rp: Awaited<ReturnType<typeof relyingParty>>) {
    const { url } = await authorizationRequest(rp.config, rp.client.redirectUri, { prompt: '', scope: 'openid email' });
    let location = url.pathname + url.search.replace('&prompt=', '');
    for (let step = 0; step < 6; step += 1) {
      const res = await agent.get(location);
      if (res.status !== 302 && res.status !== 303) return { kind: 'page' as const, status: res.status };
      const next = new URL(res.headers.location!, server.url);
      if (next.origin !== server.url) return { kind: 'app' as const };
      if (/^\/interaction\/[^/]+$/.test(next.pathname)) {
        const page = await agent.get(next.pathname);
        return page.text.includes(`${next.pathname}/identify`) ? { kind: 'login' as const, text: page.text } : { kind: 'consent' as const };
      }
      location = next.pathname + next.search;
    }
    throw new Error('no answer from /auth');
  }

  /** Lets the background work (the lookup behind a page that answers alike) run, and the mail go out. */
  async function delivered() {
    await server.registry.background.idle();
    await server.registry.mail.delivery.deliverDue();
  }

  const refuse = async (promise: Promise<unknown>) => promise.then(() => expect.fail('accepted'), (err: unknown) => err as Error & { error?: string });

  it('two-step verification required by the policy: a person without it sets it up before going on, and the login reaches two factors', async () => {
    const { domain } = await organization({ name: 'Staff', twoStepRequired: true });
    const member = await createAccount(server.registry, { email: `ann@${domain}` });
    const rp = await relyingParty();
    const agent = supertest.agent(server.url);
    const { url, checks } = await authorizationRequest(rp.config, rp.client.redirectUri);
    const stopped = await browse(agent, url.pathname + url.search, { email: member.email });
    expect(stopped.path, 'the password is right, but the login goes to enrolment').to.match(/^\/interaction\/[^/]+\/two-step\/enrol$/);
    const uid = /\/interaction\/([^/]+)/.exec(stopped.path!)![1]!;
    const enrol = stopped.page!;
    expect(enrol.status).to.equal(200);
    expect(enrol.text).to.contain('Set up two-step verification');
    // Nothing finishes the login meanwhile: the engine's resume endpoint has no result.
    const secret = /id="manual-key" class="key">([A-Z2-7 ]+)</.exec(enrol.text)![1]!.replace(/ /g, '');
    const confirmed = await agent.post(`/interaction/${uid}/two-step/enrol`).type('form').send({ _csrf: csrfFrom(enrol.text), code: await totpAt(secret, Date.now()) });
    expect(confirmed.status).to.equal(303);
    const codes = await agent.get(confirmed.headers.location!);
    expect(codes.text).to.contain('Save your recovery codes');
    const finished = await agent.post(`/interaction/${uid}/two-step/continue`).type('form').send({ _csrf: csrfFrom(codes.text) });
    expect(finished.status).to.equal(303);
    const done = await browse(agent, finished.headers.location!, { email: member.email });
    const tokens = await oidc.authorizationCodeGrant(rp.config, done.callback!, checks);
    expect(tokens.claims()).to.include({ acr: ACR_TWO_FACTORS });
    const factors = await server.registry.db.query('SELECT 1 FROM totp_factors WHERE account_id = $1 AND confirmed_at IS NOT NULL', [member.id]);
    expect(factors.rows).to.have.length(1);
  });

  it('the policy’s minimum password length holds on every path that sets a password: reset, settings, sign-up on the domain', async () => {
    const { domain } = await organization({ name: 'Staff', passwordMinLength: '20' });
    const member = await createAccount(server.registry, { email: `bo@${domain}` });
    const SHORT = 'violet quartz lamp 7'.slice(0, 16); // 16 characters: the service's minimum allows it
    const LONG = 'violet quartz lamp tide 42';

    // Reset: the page says 20, a shorter password is refused, a long one is set.
    const requester = supertest.agent(server.url);
    const request = await requester.get('/password/forgot');
    expect((await requester.post('/password/forgot').type('form').send({ _csrf: csrfFrom(request.text), email: member.email }).redirects(1)).text).to.contain('Check your email');
    await delivered();
    const mail = await smtp.lastTo(member.email);
    const link = new URL(linkIn(mail, `${server.url}/password/reset`));
    const resetPage = await supertest(server.url).get(link.pathname + link.search);
    expect(resetPage.status).to.equal(200);
    expect(resetPage.text).to.contain('At least 20 characters');
    expect(resetPage.text).to.contain('minlength="20"');
    const agent = supertest.agent(server.url);
    const form = await agent.get(link.pathname + link.search);
    const short = await agent.post('/password/reset').type('form').send({ _csrf: csrfFrom(form.text), token: link.searchParams.get('token'), password: SHORT });
    expect(short.status).to.equal(400);
    expect(short.text).to.contain('Choose a longer password');
    expect(short.text).to.contain('At least 20 characters');
    const long = await agent.post('/password/reset').type('form').redirects(1).send({ _csrf: csrfFrom(form.text), token: link.searchParams.get('token'), password: LONG });
    expect(long.status, long.text.slice(0, 300)).to.equal(200);

    // Settings: the same rule for a change.
    const { agent: settings } = await signInToAccount(server.url, member.email, { password: LONG });
    const page = await settings.get('/account/password');
    expect(page.text).to.contain('At least 20 characters');
    const change = await submit(settings, '/account/password', '/account/password', { current: LONG, password: SHORT });
    expect(change.status).to.equal(400);
    expect(change.text).to.contain('Choose a longer password');
    expect((await submit(settings, '/account/password', '/account/password', { current: LONG, password: `${LONG} again` })).status).to.equal(303);

    // Sign-up at a new address on the domain: the default policy's rule.
    const rp = await relyingParty();
    const signup = supertest.agent(server.url);
    const uid = await startInteraction(signup, rp.client);
    const start = await signup.get(`/interaction/${uid}/signup`);
    const email = `new-${unique()}@${domain}`;
    expect((await signup.post(`/interaction/${uid}/signup`).type('form').send({ _csrf: csrfFrom(start.text), email }).redirects(1)).text).to.contain('Check your email');
    await delivered();
    const code = /\b(\d{6})\b/.exec((await smtp.lastTo(email)).text ?? '')![1]!;
    const coded = await signup.post(`/interaction/${uid}/signup/code`).type('form').send({ _csrf: csrfFrom(start.text), code });
    expect(coded.status).to.equal(303);
    const details = await signup.get(`/interaction/${uid}/signup/details`);
    expect(details.text).to.contain('At least 20 characters');
    const tooShort = await signup.post(`/interaction/${uid}/signup/details`).type('form').send({ _csrf: csrfFrom(details.text), name: 'New Person', password: SHORT });
    expect(tooShort.status).to.equal(400);
    expect(tooShort.text).to.contain('Choose a longer password');
    expect(await server.registry.accounts.findByEmail(email)).to.equal(undefined);
    const created = await signup.post(`/interaction/${uid}/signup/details`).type('form').send({ _csrf: csrfFrom(details.text), name: 'New Person', password: LONG });
    expect(created.status).to.equal(303);

    // An address on no organization's domain keeps the service's own minimum.
    const outsider = await createAccount(server.registry, { email: `out-${unique()}@elsewhere.example` });
    const { agent: theirs } = await signInToAccount(server.url, outsider.email);
    expect((await submit(theirs, '/account/password', '/account/password', { current: PASSWORD, password: SHORT })).status).to.equal(303);
  });

  it('a password older than the policy allows: the login sets a new one before it continues (after the code, when two-step is on)', async () => {
    const { domain } = await organization({ name: 'Staff', passwordMaxAgeDays: '30' });
    const member = await createAccount(server.registry, { email: `cy@${domain}` });
    await server.registry.db.query("UPDATE accounts SET password_changed_at = now() - interval '40 days' WHERE id = $1", [member.id]);
    const rp = await relyingParty();
    const agent = supertest.agent(server.url);
    const { url, checks } = await authorizationRequest(rp.config, rp.client.redirectUri);
    const stopped = await browse(agent, url.pathname + url.search, { email: member.email });
    expect(stopped.page?.status).to.equal(200);
    expect(stopped.path).to.match(/^\/interaction\/[^/]+\/password\/expired$/);
    expect(stopped.page!.text).to.contain('Choose a new password');
    const path = stopped.path!;
    // A full password hashing: this form again, 503 with Retry-After (decision 0063).
    const refusing = refuseHashes(server.registry);
    let busy: supertest.Response;
    try {
      busy = await agent.post(path).type('form').send({ _csrf: csrfFrom(stopped.page!.text), password: 'a brand new passphrase 2026' });
    } finally {
      refusing.restore();
    }
    expect(refusing.refused()).to.be.greaterThan(0);
    expectBusyForm(busy, { action: path, passwords: ['a brand new passphrase 2026'] });
    const same = await agent.post(path).type('form').send({ _csrf: csrfFrom(stopped.page!.text), password: PASSWORD });
    expect(same.status).to.equal(400);
    expect(same.text).to.contain('Choose a different password');
    const short = await agent.post(path).type('form').send({ _csrf: csrfFrom(stopped.page!.text), password: 'short' });
    expect(short.status).to.equal(400);
    const renewed = await agent.post(path).type('form').send({ _csrf: csrfFrom(stopped.page!.text), password: 'a brand new passphrase 2026' });
    expect(renewed.status).to.equal(303);
    const done = await browse(agent, renewed.headers.location!, { email: member.email });
    expect(done.callback, `the login went on to the app, not ${done.path} ${done.page?.status} ${done.page?.text.slice(0, 400)}`).to.be.instanceOf(URL);
    await oidc.authorizationCodeGrant(rp.config, done.callback!, checks);
    // The old password no longer works; the new one logs in without being asked again.
    const old = await browse(supertest.agent(server.url), (await authorizationRequest(rp.config, rp.client.redirectUri)).url.pathname + (await authorizationRequest(rp.config, rp.client.redirectUri)).url.search, { email: member.email });
    expect(old.page?.status).to.equal(401);
    await signIn(rp, member.email, { password: 'a brand new passphrase 2026' });

    // With two-step on, the password alone never reaches the change: the code comes first.
    const second = await createAccount(server.registry, { email: `di@${domain}` });
    const { secret } = await enrolTwoStep(server.registry, second);
    await server.registry.db.query("UPDATE accounts SET password_changed_at = now() - interval '40 days' WHERE id = $1", [second.id]);
    offset += 31_000; // the enrolment used this step's code
    const browser = supertest.agent(server.url);
    const begun = await authorizationRequest(rp.config, rp.client.redirectUri);
    const atCode = await browse(browser, begun.url.pathname + begun.url.search, { email: second.email });
    expect(atCode.page?.text).to.contain('/two-step');
    const uid = /\/interaction\/([^/]+)/.exec(atCode.path!)![1]!;
    expect((await browser.get(`/interaction/${uid}/password/expired`)).status, 'not before the code').to.equal(400);
    const coded = await browser.post(`/interaction/${uid}/two-step`).type('form').send({ _csrf: csrfFrom(atCode.page!.text), code: await totpAt(secret, Date.now()) });
    expect(coded.status).to.equal(303);
    expect(coded.headers.location).to.equal(`/interaction/${uid}/password/expired`);
    const changePage = await browser.get(coded.headers.location!);
    const changed = await browser.post(coded.headers.location!).type('form').send({ _csrf: csrfFrom(changePage.text), password: 'another new passphrase 2026' });
    expect(changed.status).to.equal(303);
    const finished = await browse(browser, changed.headers.location!, { email: second.email });
    const tokens = await oidc.authorizationCodeGrant(rp.config, finished.callback!, begun.checks);
    expect(tokens.claims(), 'the code still counts').to.include({ acr: ACR_TWO_FACTORS });
  });

  it('idle timeout: a grant used within it keeps working past it in total; unused for longer, refresh is invalid_grant and the browser logs in again', async () => {
    const { domain } = await organization({ name: 'Staff', idleTimeoutSeconds: 600 });
    const member = await createAccount(server.registry, { email: `ed@${domain}` });
    const rp = await relyingParty();
    const { agent, tokens } = await signIn(rp, member.email);
    offset += 8 * MINUTE;
    const first = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    expect((await reuse(agent, rp)).kind, 'the session was used 8 minutes after its login').to.equal('app');
    offset += 8 * MINUTE;
    const second = await oidc.refreshTokenGrant(rp.config, first.refresh_token!);
    expect((await reuse(agent, rp)).kind, '16 minutes after the login, 8 after its last use').to.equal('app');
    offset += 11 * MINUTE;
    const idle = await refuse(oidc.refreshTokenGrant(rp.config, second.refresh_token!));
    expect(idle.error).to.equal('invalid_grant');
    const after = await reuse(agent, rp);
    expect(after.kind).to.equal('login');
    // The next person at a machine someone walked away from is not shown who was signed in.
    expect(after.kind === 'login' && after.text).to.be.a('string').and.not.contain(member.email);
  });

  it('maximum session lifetime: however active, a login older than it no longer counts', async () => {
    const { domain } = await organization({ name: 'Staff', maxSessionSeconds: 3600 });
    const member = await createAccount(server.registry, { email: `fi@${domain}` });
    const rp = await relyingParty();
    const { agent, tokens } = await signIn(rp, member.email);
    offset += 30 * MINUTE;
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    expect((await reuse(agent, rp)).kind).to.equal('app');
    offset += 31 * MINUTE;
    expect((await refuse(oidc.refreshTokenGrant(rp.config, refreshed.refresh_token!))).error).to.equal('invalid_grant');
    expect((await reuse(agent, rp)).kind).to.equal('login');
    // The account pages hold the session to the same rule.
    const { agent: settings } = await signInToAccount(server.url, member.email);
    offset += 61 * MINUTE;
    expect((await settings.get('/account')).status).to.equal(303);
  });

  it('"sign everyone out" from the console: refresh is invalid_grant, apps get a back-channel logout, the next /auth asks for a login; a new login works', async () => {
    const { admin, org, domain, policyId } = await organization({ name: 'Staff' });
    const member = await createAccount(server.registry, { email: `gus@${domain}` });
    const rp = await relyingParty({ backchannelLogoutUri: `${receiver.url}/logout` });
    const { agent, tokens } = await signIn(rp, member.email);
    const before = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);

    const { agent: console } = await signInToAccount(server.url, admin.email);
    const path = `/admin/organizations/${org.id}/policies/${policyId}/sign-out`;
    const confirm = await console.get(path);
    expect(confirm.status).to.equal(200);
    expect(confirm.text).to.contain('1 person who follow');
    const done = await postForm(console, path, path);
    expect(done.status).to.equal(303);

    expect((await refuse(oidc.refreshTokenGrant(rp.config, before.refresh_token!))).error).to.equal('invalid_grant');
    expect((await reuse(agent, rp)).kind).to.equal('login');
    expect(receiver.deliveries.length, 'the app was told').to.be.greaterThan(0);
    const events = await server.registry.db.query<{ action: string; detail: { accounts: number } }>("SELECT action, detail FROM organization_events WHERE organization_id = $1 AND action = 'policy.signed_out'", [org.id]);
    expect(events.rows[0]?.detail.accounts).to.equal(1);
    // The admin, on another domain, is not under the policy: still signed in.
    expect((await console.get(`/admin/organizations/${org.id}/policies`)).status).to.equal(200);

    offset += 2000; // a login made after the sign-out
    const again = await signIn(rp, member.email);
    expect((await oidc.refreshTokenGrant(rp.config, again.tokens.refresh_token!)).access_token).to.be.a('string');
  });

  it('a policy change takes effect at the next refresh: a new default requiring two-step makes a one-factor grant invalid_grant', async () => {
    const { admin, org, domain } = await organization({ name: 'Staff' });
    const member = await createAccount(server.registry, { email: `hal@${domain}` });
    const rp = await relyingParty();
    const { agent, tokens } = await signIn(rp, member.email);
    const first = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    const strict = await newPolicy(admin.id, org.id, { name: 'Strict', twoStepRequired: true });
    expect((await oidc.refreshTokenGrant(rp.config, first.refresh_token!)).access_token, 'not the default yet: nothing changes').to.be.a('string');
    const made = await server.registry.organizations.policies.makeDefault(admin.id, org.id, strict);
    expect(made.ok).to.equal(true);
    const second = await refuse(oidc.refreshTokenGrant(rp.config, first.refresh_token!));
    expect(second.error).to.equal('invalid_grant');
    expect((await reuse(agent, rp)).kind).to.equal('login');
  });

  describe('an organization that requires single sign-on', () => {
    it('password reset: every address on the domain is told to use the company sign-in, alike, and nothing is mailed', async () => {
      const { admin, org, domain } = await organization(undefined);
      const member = await createAccount(server.registry, { email: `ivy@${domain}` });
      await newPolicy(admin.id, org.id, { name: 'SSO', loginMethod: 'sso', connectorId: await connector(org.id, admin.id) });
      const answers = [];
      for (const email of [member.email, `nobody-${unique()}@${domain}`]) {
        const agent = supertest.agent(server.url);
        const form = await agent.get('/password/forgot');
        const res = await agent.post('/password/forgot').type('form').send({ _csrf: csrfFrom(form.text), email });
        expect(res.status).to.equal(200);
        expect(res.text).to.contain('Sign in through Acme');
        expect(res.text).to.contain('no email was sent');
        answers.push(res.text.replace(email, '').replace(/name="_csrf" value="[^"]+"/g, ''));
      }
      expect(answers[0]).to.equal(answers[1]);
      // Another domain's address gets the usual answer.
      const agent = supertest.agent(server.url);
      const form = await agent.get('/password/forgot');
      expect((await agent.post('/password/forgot').type('form').send({ _csrf: csrfFrom(form.text), email: `x-${unique()}@elsewhere.example` }).redirects(1)).text).to.contain('Check your email');
      await server.registry.background.idle();
      const mail = await server.registry.db.query('SELECT 1 FROM mail_outbox WHERE recipient LIKE $1', [`%@${domain}`]);
      expect(mail.rows).to.have.length(0);
    });

    it('sign-up on the domain is refused with a page leading to the company sign-in, and nothing is mailed', async () => {
      const { admin, org, domain } = await organization(undefined);
      const connectorId = await connector(org.id, admin.id);
      await newPolicy(admin.id, org.id, { name: 'SSO', loginMethod: 'sso', connectorId });
      const rp = await relyingParty();
      const agent = supertest.agent(server.url);
      const uid = await startInteraction(agent, rp.client);
      const start = await agent.get(`/interaction/${uid}/signup`);
      const email = `new-${unique()}@${domain}`;
      const res = await agent.post(`/interaction/${uid}/signup`).type('form').send({ _csrf: csrfFrom(start.text), email });
      expect(res.status).to.equal(403);
      expect(res.text).to.contain('Sign in through Acme');
      expect(res.text).to.contain(`/interaction/${uid}/sso/${connectorId}?login_hint=${encodeURIComponent(email)}`);
      await server.registry.background.idle();
      expect((await server.registry.db.query('SELECT 1 FROM mail_outbox WHERE recipient = $1', [email])).rows).to.have.length(0);
      expect((await server.registry.db.query('SELECT 1 FROM signup_flows WHERE email = $1', [email])).rows).to.have.length(0);
    });

    it('refresh and the management API refuse a grant made with a password once the account must use SSO', async () => {
      const { admin, org, domain } = await organization(undefined);
      const member = await createAccount(server.registry, { email: `jo@${domain}` });
      // The member runs an organization of their own, so the management API answers them.
      const side = await server.registry.organizations.service.create(member.id, 'Side project');
      expect(side.ok).to.equal(true);
      const rp = await relyingParty();
      const { tokens } = await signIn(rp, member.email, { extra: { scope: `openid email offline_access ${MANAGE_ORGANIZATIONS_SCOPE}` } });
      const api = (token: string) => fetch(`${server.url}/api/organizations`, { headers: { Authorization: `Bearer ${token}` } });
      expect((await api(tokens.access_token)).status).to.equal(200);
      const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);

      await newPolicy(admin.id, org.id, { name: 'SSO', loginMethod: 'sso', connectorId: await connector(org.id, admin.id) });
      const refused = await api(refreshed.access_token);
      expect(refused.status).to.equal(401);
      expect((await refuse(oidc.refreshTokenGrant(rp.config, refreshed.refresh_token!))).error).to.equal('invalid_grant');
      // The login page sends the address to the company's sign-in, without a password page.
      const agent = supertest.agent(server.url);
      const uid = await startInteraction(agent, rp.client);
      const login = await agent.get(`/interaction/${uid}`);
      const identify = await agent.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(login.text), email: member.email });
      expect(identify.status).to.equal(303);
      expect(identify.headers.location).to.match(new RegExp(`^/interaction/${uid}/sso/con_`));
    });
  });
});
