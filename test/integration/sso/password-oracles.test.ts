import { expect } from 'chai';
import supertest from 'supertest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { startUpstreamIdp, type UpstreamUser } from '../../helpers/upstream-idp.ts';
import { ssoOrganization } from '../../helpers/sso.ts';
import { importLegacy, legacyMember, TRELLO_PASSWORD } from '../../helpers/trello.ts';

type Agent = ReturnType<typeof supertest.agent>;

/**
 * The old password of an account that must sign in through its company's identity provider is
 * no input anywhere (decisions 0033, 0048): not at /trello/prove, not in settings'
 * re-authentication. And an upstream that does not say an address is verified does not get an
 * existing account at that address (decision 0034 as amended by 0048).
 */
describe('SSO: no password oracle, no takeover by an unconfirmed address', () => {
  let upstream: Awaited<ReturnType<typeof startUpstreamIdp>>;
  let server: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;
  let rp: oidc.Configuration;
  let sso: Awaited<ReturnType<typeof ssoOrganization>>;

  beforeEach(async () => {
    await resetDatabase();
    upstream = await startUpstreamIdp({ clientId: 'lanyard-at-acme' });
    server = await startTestServer();
    sso = await ssoOrganization(server.registry, { domain: 'acme.test', upstream });
    upstream.configure(`${server.url}/login/sso/${sso.connectorId}/callback`);
    client = await createClient(server.registry, { firstParty: true, name: 'Jira' });
    rp = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  afterEach(async () => {
    await server?.close();
    await upstream?.close();
  });

  async function request() {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: client.redirectUri, scope: 'openid email offline_access', prompt: 'consent', state, nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    return { url, checks: { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce } };
  }

  async function follow(lanyard: Agent, location: string): Promise<{ callback?: URL; page?: supertest.Response }> {
    const upstreamAgent = supertest.agent(upstream.issuer);
    for (let i = 0; i < 25; i += 1) {
      const url = new URL(location, server.url);
      if (url.origin === new URL(client.redirectUri).origin) return { callback: url };
      const agent = url.origin === server.url ? lanyard : upstreamAgent;
      const res = await agent.get(url.pathname + url.search);
      if (res.status === 200 && /name="_csrf"/.test(res.text) && res.text.includes('/consent')) {
        const action = /action="([^"]*consent[^"]*)"/.exec(res.text)![1]!;
        const given = await lanyard.post(action).type('form').send({ _csrf: csrfFrom(res.text) });
        location = new URL(given.headers.location!, url).href;
        continue;
      }
      if (![302, 303].includes(res.status)) return { page: res };
      location = new URL(res.headers.location!, url).href;
    }
    throw new Error('too many redirects');
  }

  async function interaction(lanyard: Agent) {
    const { url, checks } = await request();
    const first = await lanyard.get(url.pathname + url.search);
    expect(first.status).to.equal(303);
    const uid = /\/interaction\/([^/?#]+)/.exec(first.headers.location!)![1]!;
    const page = await lanyard.get(`/interaction/${uid}`);
    return { uid, page, checks, csrf: csrfFrom(page.text) };
  }

  async function login(email: string, user: UpstreamUser) {
    upstream.signInAs(user);
    const lanyard = supertest.agent(server.url);
    const { uid, csrf, checks } = await interaction(lanyard);
    const identified = await lanyard.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrf, email });
    expect(identified.status).to.equal(303);
    return { checks, ...(await follow(lanyard, identified.headers.location!)) };
  }

  async function tokensOf(result: { callback?: URL; checks?: unknown }) {
    expect(result.callback, 'reached the relying party').to.not.equal(undefined);
    return oidc.authorizationCodeGrant(rp, result.callback!, result.checks as never);
  }

  /** A Trello member's review started in a new interaction (its Trello password typed at `email`). */
  async function trelloReview(email: string) {
    const lanyard = supertest.agent(server.url);
    const { uid, csrf } = await interaction(lanyard);
    const trello = await lanyard.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrf, email, password: TRELLO_PASSWORD });
    expect(trello.headers.location).to.equal(`/interaction/${uid}/trello/review`);
    return { lanyard, uid, csrf };
  }

  describe('/trello/prove', () => {
    it('checks no password for an address the flow did not send there: the SSO account’s right old password gets the wrong one’s answer', async () => {
      // The victim: a managed account on the SSO domain that still has its old password hash.
      const victim = await createAccount(server.registry, { email: 'victim@acme.test' });
      // The attacker: a legacy Trello member whose Trello password they know, on a domain nobody holds.
      await importLegacy(server.registry, [legacyMember({ emails: [{ address: 'attacker@gmail.test', verified: true, primary: true }] })]);
      const { lanyard, uid, csrf } = await trelloReview('attacker@gmail.test');
      const wrong = await lanyard.post(`/interaction/${uid}/trello/prove`).type('form').send({ _csrf: csrf, email: victim.email, password: 'not the password at all' });
      const right = await lanyard.post(`/interaction/${uid}/trello/prove`).type('form').send({ _csrf: csrf, email: victim.email, password: PASSWORD });
      expect({ status: right.status, location: right.headers.location }).to.deep.equal({ status: wrong.status, location: wrong.headers.location });
      expect(right.status).to.equal(400);
      expect(right.text).to.contain('Update your Trello account');
    });

    it('is no second password form for an ordinary account either: an address outside the flow is refused before any check', async () => {
      const other = await createAccount(server.registry, { email: 'someone@example.org' });
      await importLegacy(server.registry, [legacyMember({ emails: [{ address: 'attacker2@gmail.test', verified: true, primary: true }] })]);
      const { lanyard, uid, csrf } = await trelloReview('attacker2@gmail.test');
      const right = await lanyard.post(`/interaction/${uid}/trello/prove`).type('form').send({ _csrf: csrf, email: other.email, password: PASSWORD });
      expect(right.status).to.equal(400);
      expect(right.headers.location).to.equal(undefined);
      // Nothing waits to be linked to that account.
      expect(await server.registry.trello.members.findByAccountId(other.id)).to.equal(undefined);
    });

    it('sends a member’s own address whose organization requires SSO to the company sign-in before any password is hashed: right and wrong alike', async () => {
      const managed = await createAccount(server.registry, { email: 'grace@acme.test' });
      await importLegacy(server.registry, [legacyMember({ emails: [
        { address: 'grace@gmail.test', verified: true, primary: true },
        { address: managed.email, verified: true, primary: false },
      ] })]);
      const answers = [];
      for (const password of ['not the password at all', PASSWORD]) {
        const { lanyard, uid, csrf } = await trelloReview('grace@gmail.test');
        // The review's own step for an address that has an account: "prove that account".
        const chosen = await lanyard.post(`/interaction/${uid}/trello/review`).type('form').send({ _csrf: csrf, email: managed.email });
        expect(chosen.status).to.equal(409);
        const proved = await lanyard.post(`/interaction/${uid}/trello/prove`).type('form').send({ _csrf: csrfFrom(chosen.text), email: managed.email, password });
        answers.push({ status: proved.status, location: proved.headers.location?.replace(uid, '<uid>') });
      }
      expect(answers[0]).to.deep.equal(answers[1]);
      expect(answers[0]!.status).to.equal(303);
      expect(answers[0]!.location).to.match(new RegExp(`^/interaction/<uid>/sso/${sso.connectorId}`));
    });
  });

  describe('settings re-authentication', () => {
    it('does not verify the old password of an SSO-required account: right and wrong get the same answer, stale session or fresh', async () => {
      // The account signed in through SSO; its old password (from before the switch) is still stored.
      const victim = await createAccount(server.registry, { email: 'reauth@acme.test' });
      await tokensOf(await login(victim.email, { sub: 'up-reauth', email: victim.email, email_verified: true }));
      const reauth = server.registry.reauthentication;
      for (const ago of [3600, 10]) {
        const proof = { login: { amr: ['fed', `sso:${sso.connectorId}`], acr: undefined, authTime: Math.floor(Date.now() / 1000) - ago } };
        const wrong = await reauth.confirm(victim, { ...proof, password: 'not the password at all' });
        const right = await reauth.confirm(victim, { ...proof, password: PASSWORD });
        expect(right, `${ago}s ago`).to.deep.equal(wrong);
        expect(right, `${ago}s ago`).to.deep.equal(ago === 10 ? { ok: true, via: 'session' } : { ok: false, problem: 'reauth.required', methods: [`connector:${sso.connectorId}`], wantedAcr: (right as { wantedAcr: string }).wantedAcr });
      }
    });

    it('still checks the password of an account whose policy allows it (control)', async () => {
      const account = await createAccount(server.registry, { email: 'plain@example.org' });
      const proof = { login: { amr: ['pwd'], acr: undefined, authTime: Math.floor(Date.now() / 1000) - 3600 } };
      expect(await server.registry.reauthentication.confirm(account, { ...proof, password: 'not the password at all' })).to.deep.equal({ ok: false, problem: 'password.current_wrong' });
      expect(await server.registry.reauthentication.confirm(account, { ...proof, password: PASSWORD })).to.deep.include({ ok: true, via: 'password' });
    });
  });

  describe('an upstream that omits email_verified', () => {
    it('creates a new account just in time', async () => {
      const tokens = await tokensOf(await login('new@acme.test', { sub: 'up-new', email: 'new@acme.test' }));
      const account = (await server.registry.accounts.findByEmail('new@acme.test'))!;
      expect(tokens.claims()!.sub).to.be.a('string');
      expect(account).to.include({ email_verified: true, password_hash: null });
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-new')).to.include({ account_id: account.id });
    });

    it('does not link an existing account by its address: a clear page, nothing linked — until the upstream says the address is verified', async () => {
      const existing = await createAccount(server.registry, { email: 'owner@acme.test' });
      const refused = await login(existing.email, { sub: 'up-self-registered', email: existing.email });
      expect(refused.callback).to.equal(undefined);
      expect(refused.page?.status).to.equal(403);
      expect(refused.page?.text).to.contain('didn’t confirm your address');
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-self-registered')).to.equal(undefined);
      const after = (await server.registry.accounts.findByEmail(existing.email))!;
      expect(after.password_hash).to.equal(existing.password_hash);
      // The same upstream saying `email_verified: true` links it (the rule is the claim, not the account).
      await tokensOf(await login(existing.email, { sub: 'up-owner', email: existing.email, email_verified: true }));
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-owner')).to.include({ account_id: existing.id });
    });

    it('does not migrate a Trello member onto an existing account at the address', async () => {
      const existing = await createAccount(server.registry, { email: 'member@acme.test' });
      await importLegacy(server.registry, [legacyMember({ emails: [{ address: existing.email, verified: true, primary: true }] })]);
      const refused = await login(existing.email, { sub: 'up-member', email: existing.email });
      expect(refused.page?.status).to.equal(403);
      expect(await server.registry.trello.members.findByAccountId(existing.id)).to.equal(undefined);
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-member')).to.equal(undefined);
    });
  });
});
