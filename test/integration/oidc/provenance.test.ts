import { expect } from 'chai';
import supertest from 'supertest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom, followSteps } from '../../helpers/login-driver.ts';
import { enrolTwoStep, totpAt } from '../../helpers/two-step.ts';
import type { Clock } from '../../../src/shared/clock.ts';
import { ACR_ONE_FACTOR, ACR_TWO_FACTORS } from '../../../src/policy/levels.ts';

/**
 * Sessions and grants know how they were made (docs/flows/login.md "Provenance and levels",
 * decision 0025): the levels are advertised and put in the ID token, acr_values and max_age are
 * honoured, and when the account's policy tightens after a one-factor login, the refresh token,
 * userinfo, introspection and our APIs refuse that login's tokens and the next /auth asks for a
 * login again — until the person logs in at the required level.
 */
describe('session provenance and assurance levels', () => {
  let server: TestServer;
  // Our services' clock (TOTP steps), mid-step; the engine keeps real time.
  let now = Math.floor(Date.now() / 30_000) * 30_000 + 15_000;
  const clock: Clock = { now: () => now };

  before(async () => {
    await resetDatabase();
    server = await startTestServer({ clock });
  });
  after(async () => server.close());

  type Agent = ReturnType<typeof supertest.agent>;

  async function setup(options: { twoStep?: boolean } = {}) {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true, name: 'Jira' });
    const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const secret = options.twoStep ? (await enrolTwoStep(server.registry, account)).secret : undefined;
    now += 30_000; // the enrolment used this step's code
    return { account, client, config, secret, agent: supertest.agent(server.url) };
  }

  /** An authorization request as the relying party (openid-client) builds it. */
  async function request(config: oidc.Configuration, redirectUri: string, extra: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: 'openid email', state, nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra,
    });
    return { url, checks: { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, ...(extra.max_age ? { maxAge: Number(extra.max_age) } : {}) } };
  }

  /**
   * Follows the authorization in `agent` through the real pages: the login (address, password,
   * and the authenticator code when asked), consent when asked. Returns the callback and the
   * interactions met on the way (with the login prompt's reasons).
   */
  async function authorize(agent: Agent, url: URL, login: { email: string; secret?: string | undefined }) {
    const prompts: { uid: string; reasons: string[] }[] = [];
    let location = url.pathname + url.search;
    for (let step = 0; step < 12; step += 1) {
      const target = new URL(location, server.url);
      if (target.origin !== server.url) return { callback: target, prompts };
      const res = await agent.get(target.pathname + target.search);
      if (res.status === 303 || res.status === 302) {
        const next = new URL(res.headers.location!, server.url);
        const uid = /^\/interaction\/([^/]+)$/.exec(next.pathname)?.[1];
        if (uid && next.origin === server.url) {
          const interaction = await server.registry.provider.Interaction.find(uid);
          prompts.push({ uid, reasons: interaction?.prompt.reasons ?? [] });
        }
        location = res.headers.location!;
        continue;
      }
      expect(res.status, `GET ${target.pathname}: ${res.text.slice(0, 300)}`).to.equal(200);
      const uid = /^\/interaction\/([^/]+)$/.exec(target.pathname)?.[1];
      if (!uid) throw new Error(`unexpected page at ${target.pathname}`);
      let done;
      if (res.text.includes(`/interaction/${uid}/consent`)) {
        done = await agent.post(`/interaction/${uid}/consent`).type('form').send({ _csrf: csrfFrom(res.text) });
      } else {
        const identify = await agent.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(res.text), email: login.email }).redirects(1);
        done = await followSteps(agent, await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(identify.text), email: login.email, password: PASSWORD }));
        if (done.status === 200 && done.text.includes(`/interaction/${uid}/two-step`)) {
          if (!login.secret) throw new Error('the login asked for a code');
          done = await agent.post(`/interaction/${uid}/two-step`).type('form').send({ _csrf: csrfFrom(done.text), code: await totpAt(login.secret, now) });
          now += 30_000;
        }
      }
      expect(done.status, done.text.slice(0, 300)).to.equal(303);
      location = done.headers.location!;
    }
    throw new Error('authorization did not finish within 12 steps');
  }

  async function signIn(it: Awaited<ReturnType<typeof setup>>, extra: Record<string, string> = {}, options: { secret?: string | undefined } = {}) {
    const { url, checks } = await request(it.config, it.client.redirectUri, extra);
    const { callback, prompts } = await authorize(it.agent, url, { email: it.account.email, secret: options.secret });
    const tokens = await oidc.authorizationCodeGrant(it.config, callback, checks);
    return { tokens, prompts };
  }

  const refuse = async (promise: Promise<unknown>) => promise.then(() => expect.fail('accepted'), (err: unknown) => err as Error & { error?: string });

  it('advertises the levels in discovery', async () => {
    const res = await fetch(`${server.url}/.well-known/openid-configuration`);
    const discovery = (await res.json()) as { acr_values_supported?: string[]; claims_supported?: string[] };
    expect(discovery.acr_values_supported).to.deep.equal([ACR_ONE_FACTOR, ACR_TWO_FACTORS]);
    expect(discovery.claims_supported).to.include.members(['acr', 'amr', 'auth_time']);
  });

  it('puts the reached level in the ID token: one factor after a password, two after the code, and on the access token', async () => {
    const one = await setup();
    const first = await signIn(one);
    const claims = first.tokens.claims()!;
    expect(claims).to.include({ acr: ACR_ONE_FACTOR });
    expect(claims.amr).to.deep.equal(['pwd']);
    expect(claims.auth_time).to.be.a('number');
    // The access token carries the grant's provenance in its own row (extraTokenClaims): introspection shows it.
    const introspection = await oidc.tokenIntrospection(one.config, first.tokens.access_token);
    expect(introspection).to.include({ active: true, acr: ACR_ONE_FACTOR, auth_time: claims.auth_time });
    expect(introspection.amr).to.deep.equal(['pwd']);

    const two = await setup({ twoStep: true });
    const second = await signIn(two, {}, { secret: two.secret });
    expect(second.tokens.claims()).to.include({ acr: ACR_TWO_FACTORS });
    expect(second.tokens.claims()!.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
    // A refresh keeps the level: the ID token it brings says two factors still.
    const refreshed = await oidc.refreshTokenGrant(two.config, second.tokens.refresh_token!);
    expect(refreshed.claims()).to.include({ acr: ACR_TWO_FACTORS });
  });

  it('honours acr_values: a one-factor session is asked to log in again with two factors, then passes', async () => {
    const it = await setup();
    const first = await signIn(it); // two-step still off: one factor
    expect(first.tokens.claims()).to.include({ acr: ACR_ONE_FACTOR });
    const { secret } = await enrolTwoStep(server.registry, it.account);
    now += 30_000;

    // The same session is enough for a request that asks for no level: no login page.
    const silent = await signIn(it);
    expect(silent.prompts).to.deep.equal([]);
    expect(silent.tokens.claims()).to.include({ acr: ACR_ONE_FACTOR });

    // A relying party that asks for two factors (a Jira admin page) gets the login again ...
    const stepUp = await signIn(it, { acr_values: ACR_TWO_FACTORS }, { secret });
    expect(stepUp.prompts).to.have.length(1);
    expect(stepUp.prompts[0]!.reasons).to.include('session_insufficient');
    expect(stepUp.tokens.claims()).to.include({ acr: ACR_TWO_FACTORS });
    expect(stepUp.tokens.claims()!.amr).to.deep.equal(['pwd', 'otp', 'mfa']);

    // ... and once the session has two factors, the same request passes without a page.
    const again = await signIn(it, { acr_values: ACR_TWO_FACTORS });
    expect(again.prompts).to.deep.equal([]);
    expect(again.tokens.claims()).to.include({ acr: ACR_TWO_FACTORS });
  });

  it('answers prompt=none with login_required when the session is below the requested level', async () => {
    const it = await setup();
    await signIn(it);
    const { url } = await request(it.config, it.client.redirectUri, { acr_values: ACR_TWO_FACTORS, prompt: 'none' });
    const res = await it.agent.get(url.pathname + url.search);
    expect(res.status).to.equal(303);
    const callback = new URL(res.headers.location!);
    expect(callback.searchParams.get('error')).to.equal('login_required');
  });

  it('honours max_age=0 with a new login, and the ID token says when', async () => {
    const it = await setup();
    const first = await signIn(it);
    const silent = await signIn(it);
    expect(silent.prompts).to.deep.equal([]);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // auth_time is in seconds
    // A recent enough session passes ...
    const recent = await signIn(it, { max_age: '3600' });
    expect(recent.prompts).to.deep.equal([]);
    expect(recent.tokens.claims()!.auth_time).to.equal(first.tokens.claims()!.auth_time);
    // ... max_age=0 is a login now (the engine treats it as prompt=login, OIDC Core §3.1.2.1).
    const fresh = await signIn(it, { max_age: '0' });
    expect(fresh.prompts).to.have.length(1);
    expect(fresh.prompts[0]!.reasons).to.include('login_prompt');
    expect(fresh.tokens.claims()!.auth_time).to.be.greaterThan(first.tokens.claims()!.auth_time as number);
  });

  it('refuses a one-factor login’s tokens once two-step becomes required, and asks the next /auth for two factors', async () => {
    const it = await setup();
    const { tokens } = await signIn(it, { scope: 'openid email offline_access', prompt: 'consent' });
    const { secret } = await enrolTwoStep(server.registry, it.account);
    now += 30_000;

    // Before the policy changes, everything works (two-step being on does not end sessions).
    const refreshed = await oidc.refreshTokenGrant(it.config, tokens.refresh_token!);
    const access = refreshed.access_token;
    expect((await oidc.fetchUserInfo(it.config, access, it.account.id)).sub).to.equal(it.account.id);
    expect((await supertest(server.url).get('/api/profiles/me').set('Authorization', `Bearer ${access}`)).status).to.equal(200);
    expect((await supertest(server.url).get('/api/security-events').set('Authorization', `Bearer ${access}`)).status).to.equal(200);
    expect((await oidc.tokenIntrospection(it.config, access)).active).to.equal(true);

    // The operator requires two-step verification for the account.
    await server.registry.db.query('UPDATE accounts SET two_step_required = true WHERE id = $1', [it.account.id]);

    const refresh = await refuse(oidc.refreshTokenGrant(it.config, refreshed.refresh_token!));
    expect(refresh).to.be.instanceOf(oidc.ResponseBodyError);
    expect(refresh.error).to.equal('invalid_grant');
    const userinfo = await refuse(oidc.fetchUserInfo(it.config, access, it.account.id));
    expect(userinfo).to.be.instanceOf(oidc.WWWAuthenticateChallengeError);
    expect((userinfo as oidc.WWWAuthenticateChallengeError).response?.status).to.equal(401);
    const profile = await supertest(server.url).get('/api/profiles/me').set('Authorization', `Bearer ${access}`);
    expect(profile.status).to.equal(401);
    expect(profile.headers['www-authenticate']).to.contain('invalid_token');
    expect((await supertest(server.url).get('/api/security-events').set('Authorization', `Bearer ${access}`)).status).to.equal(401);
    expect((await oidc.tokenIntrospection(it.config, access)).active).to.equal(false);

    // The browser session is still there, but the next /auth shows the login page, not a code.
    const { url } = await request(it.config, it.client.redirectUri);
    const auth = await it.agent.get(url.pathname + url.search);
    expect(auth.status).to.equal(303);
    expect(auth.headers.location).to.match(/^\/interaction\/[^/]+$/);
    const page = await it.agent.get(auth.headers.location!);
    expect(page.status).to.equal(200);
    expect(page.text).to.contain(`${auth.headers.location}/identify`);

    // Logging in with both factors satisfies the policy: tokens work again, and no loop.
    const stepUp = await signIn(it, { scope: 'openid email offline_access', prompt: 'consent' }, { secret });
    expect(stepUp.tokens.claims()).to.include({ acr: ACR_TWO_FACTORS });
    const later = await oidc.refreshTokenGrant(it.config, stepUp.tokens.refresh_token!);
    expect(later.claims()).to.include({ acr: ACR_TWO_FACTORS });
    expect((await oidc.fetchUserInfo(it.config, later.access_token, it.account.id)).sub).to.equal(it.account.id);
    expect((await supertest(server.url).get('/api/profiles/me').set('Authorization', `Bearer ${later.access_token}`)).status).to.equal(200);
    const silent = await signIn(it);
    expect(silent.prompts).to.deep.equal([]);
  });

  it('refuses a deactivated account’s refresh token and access token', async () => {
    const it = await setup();
    const { tokens } = await signIn(it, { scope: 'openid email offline_access', prompt: 'consent' });
    await server.registry.db.query(`UPDATE accounts SET status = 'deactivated' WHERE id = $1`, [it.account.id]);
    const refresh = await refuse(oidc.refreshTokenGrant(it.config, tokens.refresh_token!));
    expect(refresh.error).to.equal('invalid_grant');
    expect((await supertest(server.url).get('/api/profiles/me').set('Authorization', `Bearer ${tokens.access_token}`)).status).to.equal(401);
    expect((await oidc.tokenIntrospection(it.config, tokens.access_token)).active).to.equal(false);
  });

  // The token endpoints reuse an account's row for ACCOUNT_CACHE_MILLISECONDS (decision 0040):
  // a change made through this instance applies at once (the tests above warm the row with the
  // code exchange first); one made through another instance applies within that bound.
  it('refuses the refresh once another instance’s deactivation is past the account cache’s bound', async () => {
    const other = await startTestServer({ clock });
    try {
      const it = await setup();
      const { tokens } = await signIn(it, { scope: 'openid email offline_access', prompt: 'consent' });
      const refreshed = await oidc.refreshTokenGrant(it.config, tokens.refresh_token!); // the row is remembered here
      await other.registry.db.query(`UPDATE accounts SET status = 'deactivated' WHERE id = $1`, [it.account.id]);
      await new Promise((resolve) => setTimeout(resolve, server.registry.config.accountCacheMilliseconds + 100));
      const refresh = await refuse(oidc.refreshTokenGrant(it.config, refreshed.refresh_token!));
      expect(refresh.error).to.equal('invalid_grant');
    } finally {
      await other.close();
    }
  });
});
