import { expect } from 'chai';
import supertest from 'supertest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { startUpstreamIdp, type UpstreamUser } from '../../helpers/upstream-idp.ts';
import { ssoOrganization, ssoPolicy, verifiedDomain } from '../../helpers/sso.ts';
import { importLegacy, legacyMember, TRELLO_PASSWORD } from '../../helpers/trello.ts';
import { startSmtp, type TestSmtp } from '../../helpers/smtp.ts';
import { ACR_TWO_FACTORS } from '../../../src/policy/levels.ts';
import { DISCOVERY_TTL_MS } from '../../../src/federation/oidc-client.ts';
import { signInToAccount } from '../../helpers/account-pages.ts';
import { enrolTwoStep } from '../../helpers/two-step.ts';

type Agent = ReturnType<typeof supertest.agent>;

/**
 * A company's OpenID Connect connector end to end (issue 13, docs/flows/sso.md): a real upstream
 * OpenID provider (a second oidc-provider) started by the test, Lanyard's real pages, and the
 * relying party's side through openid-client. Discovery at the identifier step, the account
 * resolved (just in time, linked, refused), the connector carried into the grant's provenance,
 * and every failure a clear page plus the console's health line.
 */
describe('SSO: an OpenID Connect connector', () => {
  let smtp: TestSmtp;
  let upstream: Awaited<ReturnType<typeof startUpstreamIdp>>;
  let server: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;
  let rp: oidc.Configuration;
  let sso: Awaited<ReturnType<typeof ssoOrganization>>;
  // Our services' clock (the decision point's "now"); the engine keeps real time.
  let now = Date.now();
  const clock = { now: () => now };

  async function start(options: { idTokenClaims?: boolean; policy?: 'default' | 'none' } = {}) {
    await resetDatabase();
    smtp = await startSmtp();
    upstream = await startUpstreamIdp({ clientId: 'lanyard-at-acme', ...(options.idTokenClaims ? { idTokenClaims: true } : {}) });
    now = Date.now();
    server = await startTestServer({ clock, overrides: { smtpUrl: smtp.url } });
    sso = await ssoOrganization(server.registry, { domain: 'acme.test', upstream, ...(options.policy ? { policy: options.policy } : {}) });
    upstream.configure(`${server.url}/login/sso/${sso.connectorId}/callback`);
    client = await createClient(server.registry, { firstParty: true, name: 'Jira' });
    rp = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  }
  afterEach(async () => {
    await server?.close();
    await upstream?.close();
    await smtp?.close();
  });

  /** An authorization request as the relying party builds it. */
  async function request(extra: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: client.redirectUri, scope: 'openid email offline_access', prompt: 'consent', state, nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra,
    });
    return { url, checks: { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce } };
  }

  /**
   * Follows redirects across Lanyard and the upstream, each with its own cookies, from `location`
   * until a page is shown or the relying party's callback is reached; consent is given on the way.
   */
  async function follow(lanyard: Agent, location: string, upstreamAgent = supertest.agent(upstream.issuer)): Promise<{ callback?: URL; page?: supertest.Response }> {
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

  /** A login from the relying party: the address typed at the identifier step, then wherever it leads. */
  async function login(email: string, user: UpstreamUser | undefined, options: { extra?: Record<string, string>; agent?: Agent } = {}): Promise<{ uid: string; identified: supertest.Response; lanyard: Agent; checks: unknown; callback?: URL; page?: supertest.Response }> {
    if (user) upstream.signInAs(user);
    else upstream.cancelNext();
    const lanyard = options.agent ?? supertest.agent(server.url);
    const { url, checks } = await request(options.extra);
    const first = await lanyard.get(url.pathname + url.search);
    expect(first.status).to.equal(303);
    const uid = /\/interaction\/([^/?#]+)/.exec(first.headers.location!)![1]!;
    const page = await lanyard.get(`/interaction/${uid}`);
    const identified = await lanyard.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(page.text), email });
    if (identified.status !== 303) return { uid, identified, lanyard, checks };
    const result: { callback?: URL; page?: supertest.Response } = await follow(lanyard, identified.headers.location!);
    return { uid, identified, lanyard, ...result, checks };
  }

  async function tokensOf(result: { callback?: URL; checks?: unknown }) {
    expect(result.callback, 'reached the relying party').to.not.equal(undefined);
    return oidc.authorizationCodeGrant(rp, result.callback!, result.checks as never);
  }

  describe('with the organization’s default policy requiring it', () => {
    beforeEach(() => start());

    it('sends an address on the domain straight to the company IdP and creates its account just in time, managed by the organization', async () => {
      const result = await login('Ada@Acme.test', { sub: 'up-ada', email: 'ada@acme.test', email_verified: true, name: 'Ada Lovelace' });
      expect(result.identified.headers.location).to.equal(`/interaction/${result.uid}/sso/${sso.connectorId}?login_hint=ada%40acme.test`);
      // The upstream was asked with the address typed, PKCE, state and nonce.
      const asked = upstream.requests.at(-1)!;
      expect(asked.get('login_hint')).to.equal('ada@acme.test');
      expect(asked.get('code_challenge_method')).to.equal('S256');
      expect(asked.get('state')).to.be.a('string');
      expect(asked.get('nonce')).to.be.a('string');
      expect(asked.get('redirect_uri')).to.equal(`${server.url}/login/sso/${sso.connectorId}/callback`);

      const tokens = await tokensOf(result);
      const claims = tokens.claims()!;
      expect(claims.amr).to.include('fed');
      expect(claims.amr).to.include(`sso:${sso.connectorId}`);

      const account = await server.registry.accounts.findByEmail('ada@acme.test');
      expect(account).to.include({ email_verified: true, name: 'Ada Lovelace', password_hash: null });
      expect(claims.sub).to.equal(account!.id);
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-ada')).to.deep.equal({ account_id: account!.id });
      const { rows } = await server.registry.db.query<{ organization_id: string }>("SELECT organization_id FROM account_managers WHERE account_id = $1 AND kind = 'organization'", [account!.id]);
      expect(rows).to.deep.equal([{ organization_id: sso.org.id }]);
      // The console's health line.
      const row = (await server.registry.db.query<{ last_success_at: Date | null }>('SELECT last_success_at FROM connectors WHERE id = $1', [sso.connectorId])).rows[0]!;
      expect(row.last_success_at).to.be.instanceOf(Date);

      // The grant carries the connector: its refresh token keeps working under the SSO policy.
      const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
      expect(refreshed.access_token).to.be.a('string');
    });

    it('links the existing managed account by its verified address, and its old password is never checked', async () => {
      const existing = await createAccount(server.registry, { email: 'grace@acme.test' });
      // The password form posted directly (a bookmark, a script): sent to the connector before any hashing.
      const lanyard = supertest.agent(server.url);
      const { url } = await request();
      const first = await lanyard.get(url.pathname + url.search);
      const uid = /\/interaction\/([^/?#]+)/.exec(first.headers.location!)![1]!;
      const page = await lanyard.get(`/interaction/${uid}`);
      const typed = await lanyard.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(page.text), email: 'grace@acme.test', password: PASSWORD });
      expect(typed.status).to.equal(303);
      expect(typed.headers.location).to.equal(`/interaction/${uid}/sso/${sso.connectorId}?login_hint=grace%40acme.test`);
      const wrong = await lanyard.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(page.text), email: 'grace@acme.test', password: 'not the password at all' });
      expect(wrong.headers.location, 'a wrong password gets the same answer: no oracle').to.equal(typed.headers.location);
      const events = await server.registry.db.query<{ type: string }>("SELECT type FROM security_events WHERE account_id = $1 AND type LIKE 'login.%'", [existing.id]);
      expect(events.rows, 'no password verdict recorded').to.deep.equal([]);

      const result = await login('grace@acme.test', { sub: 'up-grace', email: 'grace@acme.test', email_verified: true });
      const tokens = await tokensOf(result);
      expect(tokens.claims()!.sub).to.equal(existing.id);
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-grace')).to.deep.equal({ account_id: existing.id });
    });

    it('never links an account the organization does not manage: its admins claim it first (decision 0083)', async () => {
      // An account made before the organization verified its domain: not the organization's.
      const early = await createAccount(server.registry, { email: 'early@newco.test' });
      const domainId = await verifiedDomain(server.registry, sso.admin.id, sso.org.id, 'newco.test');
      expect((await server.registry.sso.connectors.setDomains(sso.admin.id, sso.org.id, sso.connectorId, [sso.domainId, domainId])).ok).to.equal(true);
      const claims = { sub: 'up-early', email: 'early@newco.test', email_verified: true };
      // Its own policy is the password (the identifier step shows the password page), so an
      // admin's way in would be the connector's step, opened directly.
      const started = await login('early@newco.test', claims);
      expect(started.identified.headers.location, 'the password page').to.match(/\/password\?email=/);
      const refused = await follow(started.lanyard, `/interaction/${started.uid}/sso/${sso.connectorId}`);
      expect(refused.page?.status).to.equal(403);
      expect(refused.page?.text).to.contain('your company doesn’t manage it yet');
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-early'), 'nothing linked').to.equal(undefined);
      // Once claimed (a preview, a mail to the account, the audit log), the company's sign-in answers for it.
      expect(await server.registry.organizations.managedAccounts.claim(sso.admin.id, sso.org.id, domainId)).to.deep.include({ ok: true });
      const claimed = await login('early@newco.test', claims);
      expect(claimed.identified.status, 'the default policy now sends it to the company’s sign-in').to.equal(303);
      expect((await tokensOf(claimed)).claims()!.sub).to.equal(early.id);
    });

    it('links a fellow admin’s account only on its own password, once (decision 0086)', async () => {
      // The organization's people sign in with a password (no policy requires the connector);
      // another admin runs the identity provider and makes it assert this admin's address.
      await server.registry.db.query('DELETE FROM authentication_policies');
      const admin = await createAccount(server.registry, { email: 'ada@acme.test' });
      await server.registry.db.query("INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'admin', now())", [sso.org.id, admin.id]);
      const claims = { sub: 'up-ada', email: 'ada@acme.test', email_verified: true };
      const started = await login('ada@acme.test', claims);
      const asked = await follow(started.lanyard, `/interaction/${started.uid}/sso/${sso.connectorId}`);
      expect(asked.page?.status, 'the upstream’s word is not enough').to.equal(200);
      expect(asked.page?.text).to.contain('Confirm it’s you');
      expect(asked.page?.text).to.contain('Password of ada@acme.test');
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-ada'), 'nothing linked yet').to.equal(undefined);
      const csrf = csrfFrom(asked.page!.text);
      const wrong = await started.lanyard.post(`/interaction/${started.uid}/sso-link`).type('form').send({ _csrf: csrf, password: 'what the other admin guesses' });
      expect(wrong.status).to.equal(401);
      expect(wrong.text).to.contain('Check your email and password');
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-ada')).to.equal(undefined);
      // Another browser cannot answer for this one (the pending link is sealed in this browser).
      const stranger = supertest.agent(server.url);
      const other = await stranger.get(`/interaction/${started.uid}/sso-link`);
      expect(other.status).to.equal(400);

      const right = await started.lanyard.post(`/interaction/${started.uid}/sso-link`).type('form').send({ _csrf: csrf, password: PASSWORD });
      expect(right.status).to.equal(303);
      const tokens = await tokensOf({ ...(await follow(started.lanyard, right.headers.location!)), checks: started.checks });
      expect(tokens.claims()!.sub).to.equal(admin.id);
      expect(tokens.claims()!.amr).to.include.members(['fed', 'pwd', `sso:${sso.connectorId}`]);
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-ada')).to.deep.equal({ account_id: admin.id });
      const linked = await server.registry.db.query<{ detail: Record<string, unknown> }>("SELECT detail FROM security_events WHERE account_id = $1 AND type = 'identity.linked'", [admin.id]);
      expect(linked.rows.map((r) => r.detail)).to.deep.equal([{ provider: 'sso', connector: sso.connectorId, proven: true }]);

      // Linked by its owner: the next company sign-in goes straight in.
      const again = await login('ada@acme.test', claims);
      const direct = await follow(again.lanyard, `/interaction/${again.uid}/sso/${sso.connectorId}`);
      expect(direct.callback?.searchParams.get('code'), 'no password asked again').to.be.a('string');
    });

    it('asks an admin whatever the policy they follow (a fellow admin can change it), even with a Trello account at the address, and refuses an admin’s account without a password', async () => {
      const chosen = await createAccount(server.registry, { email: 'grace.admin@acme.test' });
      await server.registry.db.query("INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'admin', now())", [sso.org.id, chosen.id]);
      // An unmigrated Trello account at the same address: its migration must not link around the proof.
      const member = legacyMember({ emails: [{ address: 'grace.admin@acme.test', verified: true, primary: true }] });
      await importLegacy(server.registry, [member]);
      // The default policy requires the connector (as a fellow admin may have made it): still asked.
      const result = await login('grace.admin@acme.test', { sub: 'up-grace-admin', email: 'grace.admin@acme.test', email_verified: true });
      expect(result.page?.text).to.contain('Confirm it’s you');
      expect(result.page?.text, 'the page tells the operator nothing about the account').not.to.match(/organization admin|admin’s/);
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-grace-admin')).to.equal(undefined);
      expect((await server.registry.trello.linking.findByMemberId(member.id))?.linked_account_id, 'no Trello migration around it').to.equal(null);
      const proven = await result.lanyard.post(`/interaction/${result.uid}/sso-link`).type('form').send({ _csrf: csrfFrom(result.page!.text), password: PASSWORD });
      expect((await tokensOf({ ...(await follow(result.lanyard, proven.headers.location!)), checks: result.checks })).claims()!.sub).to.equal(chosen.id);
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-grace-admin')).to.deep.equal({ account_id: chosen.id });

      await server.registry.db.query('DELETE FROM authentication_policies');
      const bare = await createAccount(server.registry, { email: 'nopass@acme.test' });
      await server.registry.db.query('UPDATE accounts SET password_hash = NULL WHERE id = $1', [bare.id]);
      await server.registry.db.query("INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'admin', now())", [sso.org.id, bare.id]);
      const started = await login('nopass@acme.test', { sub: 'up-nopass', email: 'nopass@acme.test', email_verified: true });
      const refused = await follow(started.lanyard, `/interaction/${started.uid}/sso/${sso.connectorId}`);
      expect(refused.page?.status).to.equal(403);
      expect(refused.page?.text).to.contain('Sign in as you usually do');
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-nopass')).to.equal(undefined);
    });

    it('links a two-step admin’s account only once the whole login is done, its code included', async () => {
      await server.registry.db.query('DELETE FROM authentication_policies');
      const admin = await createAccount(server.registry, { email: 'guarded.admin@acme.test' });
      await server.registry.db.query("INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'admin', now())", [sso.org.id, admin.id]);
      const { recoveryCodes } = await enrolTwoStep(server.registry, admin);
      const claims = { sub: 'up-guarded', email: 'guarded.admin@acme.test', email_verified: true };
      const started = await login('guarded.admin@acme.test', claims);
      const asked = await follow(started.lanyard, `/interaction/${started.uid}/sso/${sso.connectorId}`);
      const proven = await started.lanyard.post(`/interaction/${started.uid}/sso-link`).type('form').send({ _csrf: csrfFrom(asked.page!.text), password: PASSWORD });
      expect(proven.headers.location).to.equal(`/interaction/${started.uid}/two-step`);
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-guarded'), 'not at the password alone').to.equal(undefined);
      // The link page is spent: its password is not asked again in this login.
      expect((await started.lanyard.get(`/interaction/${started.uid}/sso-link`)).status).to.equal(400);
      const coded = await started.lanyard.post(`/interaction/${started.uid}/two-step`).type('form').send({ _csrf: csrfFrom(asked.page!.text), code: recoveryCodes[0]! });
      expect(coded.status).to.equal(303);
      expect((await tokensOf({ ...(await follow(started.lanyard, coded.headers.location!)), checks: started.checks })).claims()!.sub).to.equal(admin.id);
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-guarded')).to.deep.equal({ account_id: admin.id });
    });

    it('asks a two-step admin under a policy requiring the connector for the code too: the identity provider is not yet trusted for the account', async () => {
      const admin = await createAccount(server.registry, { email: 'strict.admin@acme.test' });
      await server.registry.db.query("INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'admin', now())", [sso.org.id, admin.id]);
      const { recoveryCodes } = await enrolTwoStep(server.registry, admin);
      const result = await login('strict.admin@acme.test', { sub: 'up-strict', email: 'strict.admin@acme.test', email_verified: true });
      expect(result.page?.text).to.contain('Confirm it’s you');
      const proven = await result.lanyard.post(`/interaction/${result.uid}/sso-link`).type('form').send({ _csrf: csrfFrom(result.page!.text), password: PASSWORD });
      expect(proven.headers.location, 'the default policy delegates two-step to the IdP, but not for a link made now').to.equal(`/interaction/${result.uid}/two-step`);
      // The domain is unlinked from the connector before the code: the link is not made.
      expect((await server.registry.sso.connectors.setDomains(sso.admin.id, sso.org.id, sso.connectorId, [])).ok).to.equal(true);
      await result.lanyard.post(`/interaction/${result.uid}/two-step`).type('form').send({ _csrf: csrfFrom(result.page!.text), code: recoveryCodes[0]! });
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-strict'), 'the connector no longer answers for the address').to.equal(undefined);
    });

    it('asks a member linked on the identity provider’s word for the proof once they become an admin, but not an account the sign-in created', async () => {
      const member = await createAccount(server.registry, { email: 'member@acme.test' });
      const claims = { sub: 'up-member', email: 'member@acme.test', email_verified: true };
      expect((await tokensOf(await login('member@acme.test', claims))).claims()!.sub, 'linked on the word of the IdP').to.equal(member.id);
      // The member creates an organization of their own: an admin now.
      const own = await server.registry.organizations.service.create(member.id, 'Member’s own');
      expect(own.ok).to.equal(true);
      const again = await login('member@acme.test', claims);
      expect(again.page?.text).to.contain('Confirm it’s you');
      const proven = await again.lanyard.post(`/interaction/${again.uid}/sso-link`).type('form').send({ _csrf: csrfFrom(again.page!.text), password: PASSWORD });
      expect((await tokensOf({ ...(await follow(again.lanyard, proven.headers.location!)), checks: again.checks })).claims()!.sub).to.equal(member.id);
      expect((await tokensOf(await login('member@acme.test', claims))).claims()!.sub, 'proven once: straight in').to.equal(member.id);

      // A link made before links recorded their proof, to an account without a password (made by
      // this sign-in, or by Google): this sign-in is how it signs in, admin or not.
      await server.registry.db.query("UPDATE account_identities SET owner_proven = false WHERE subject = 'up-member'");
      await server.registry.db.query('UPDATE accounts SET password_hash = NULL WHERE id = $1', [member.id]);
      expect((await tokensOf(await login('member@acme.test', claims))).claims()!.sub, 'no password to prove with: straight in').to.equal(member.id);

      // Made by the company's sign-in, then an admin: its link is its owner's from the start.
      const made = await tokensOf(await login('fresh.founder@acme.test', { sub: 'up-founder', email: 'fresh.founder@acme.test', email_verified: true }));
      const founder = made.claims()!.sub;
      expect((await server.registry.organizations.service.create(founder, 'Founder’s')).ok).to.equal(true);
      expect((await tokensOf(await login('fresh.founder@acme.test', { sub: 'up-founder', email: 'fresh.founder@acme.test', email_verified: true }))).claims()!.sub).to.equal(founder);
    });

    it('refuses a grant made with the password before the policy required SSO, and accepts the SSO one', async () => {
      // A password login while the organization had no policy.
      await server.registry.db.query('DELETE FROM authentication_policies');
      const account = await createAccount(server.registry, { email: 'linus@acme.test' });
      const lanyard = supertest.agent(server.url);
      const { url, checks } = await request();
      const first = await lanyard.get(url.pathname + url.search);
      const uid = /\/interaction\/([^/?#]+)/.exec(first.headers.location!)![1]!;
      const page = await lanyard.get(`/interaction/${uid}`);
      const typed = await lanyard.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(page.text), email: account.email, password: PASSWORD });
      const byPassword = await tokensOf({ ...(await follow(lanyard, typed.headers.location!)), checks });
      await ssoPolicy(server.registry, sso.org.id, sso.connectorId, { isDefault: true });
      const refused = await oidc.refreshTokenGrant(rp, byPassword.refresh_token!).then(() => undefined, (err: unknown) => err as { error?: string });
      expect(refused?.error).to.equal('invalid_grant');

      const bySso = await tokensOf(await login(account.email, { sub: 'up-linus', email: account.email, email_verified: true }));
      expect((await oidc.refreshTokenGrant(rp, bySso.refresh_token!)).access_token).to.be.a('string');
    });

    it('refuses an address outside the connector’s linked domains, creating nothing', async () => {
      const result = await login('eve@acme.test', { sub: 'up-eve', email: 'eve@elsewhere.test', email_verified: true });
      expect(result.page?.status).to.equal(403);
      expect(result.page?.text).to.contain('This address can’t sign in here');
      expect(await server.registry.accounts.findByEmail('eve@elsewhere.test')).to.equal(undefined);
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-eve')).to.equal(undefined);
    });

    it('refuses an address the upstream says is unverified, and one it does not send', async () => {
      const unverified = await login('mallory@acme.test', { sub: 'up-m', email: 'mallory@acme.test', email_verified: false });
      expect(unverified.page?.status).to.equal(403);
      expect(unverified.page?.text).to.contain('Your address isn’t verified');
      const none = await login('nobody@acme.test', { sub: 'up-none' });
      expect(none.page?.status).to.equal(403);
      expect(none.page?.text).to.contain('sent no email address');
      expect(await server.registry.accounts.findByEmail('mallory@acme.test')).to.equal(undefined);
    });

    it('refuses an authorization response naming another issuer (RFC 9207), and shows it on the health line', async () => {
      upstream.signInAs({ sub: 'up-mix', email: 'mix@acme.test', email_verified: true });
      const lanyard = supertest.agent(server.url);
      const { url } = await request();
      const first = await lanyard.get(url.pathname + url.search);
      const uid = /\/interaction\/([^/?#]+)/.exec(first.headers.location!)![1]!;
      const page = await lanyard.get(`/interaction/${uid}`);
      const identified = await lanyard.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(page.text), email: 'mix@acme.test' });
      // Follow until the upstream redirects back, then swap its `iss` for an attacker's issuer.
      const upstreamAgent = supertest.agent(upstream.issuer);
      let location = new URL(identified.headers.location!, server.url).href;
      while (!location.startsWith(`${server.url}/login/sso/`)) {
        const u = new URL(location);
        const res = await (u.origin === server.url ? lanyard : upstreamAgent).get(u.pathname + u.search);
        location = new URL(res.headers.location!, u).href;
      }
      const back = new URL(location);
      expect(back.searchParams.get('iss')).to.equal(upstream.issuer);
      back.searchParams.set('iss', 'https://attacker.example');
      const result = await follow(lanyard, back.href, upstreamAgent);
      expect(result.page?.status).to.equal(400);
      expect(result.page?.text).to.contain('Your company’s sign-in didn’t complete');
      expect(await server.registry.accounts.findByEmail('mix@acme.test')).to.equal(undefined);
      const row = (await server.registry.db.query<{ last_failure: string | null }>('SELECT last_failure FROM connectors WHERE id = $1', [sso.connectorId])).rows[0]!;
      expect(row.last_failure).to.match(/^response refused: .*iss/);
    });

    it('refuses a callback whose state is not the one this browser started (login CSRF)', async () => {
      upstream.signInAs({ sub: 'up-csrf', email: 'csrf@acme.test', email_verified: true });
      // The attacker's own login, stopped at the callback.
      const attacker = supertest.agent(server.url);
      const a = await login('csrf@acme.test', undefined, { agent: attacker });
      expect(a.page?.text).to.contain('Sign-in was cancelled');
      const victim = supertest.agent(server.url);
      const res = await victim.get(`/login/sso/${sso.connectorId}/callback?code=stolen&state=whatever`);
      expect(res.status).to.equal(400);
      expect(res.text).to.match(/took too long|This sign-in has ended/);
    });

    it('asks the upstream for userinfo because this upstream keeps the address out of the ID token', async () => {
      await tokensOf(await login('ui@acme.test', { sub: 'up-ui', email: 'ui@acme.test', email_verified: true }));
      expect(upstream.userinfoRequests).to.equal(1);
    });

    it('reports two factors when the upstream says it did more than a password', async () => {
      const tokens = await tokensOf(await login('mfa@acme.test', { sub: 'up-mfa', email: 'mfa@acme.test', email_verified: true, amr: ['pwd', 'mfa'] }));
      expect(tokens.claims()!.acr).to.equal(ACR_TWO_FACTORS);
      expect(tokens.claims()!.amr).to.include('mfa');
    });

    it('asks the upstream for a fresh sign-in when re-authenticating, and refuses an old one', async () => {
      const lanyard = supertest.agent(server.url);
      await tokensOf(await login('fresh@acme.test', { sub: 'up-fresh', email: 'fresh@acme.test', email_verified: true }, { agent: lanyard }));
      // prompt=login with a session here: the interaction goes to the connector (the account's only method).
      upstream.signInAs({ sub: 'up-fresh', email: 'fresh@acme.test', email_verified: true });
      const { url, checks } = await request({ prompt: 'login' });
      const first = await lanyard.get(url.pathname + url.search);
      const uid = /\/interaction\/([^/?#]+)/.exec(first.headers.location!)![1]!;
      const page = await lanyard.get(`/interaction/${uid}`);
      const identified = await lanyard.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(page.text), email: 'fresh@acme.test' });
      const again = await follow(lanyard, identified.headers.location!);
      expect(upstream.requests.at(-1)!.get('max_age')).to.equal('0');
      expect(upstream.requests.at(-1)!.get('prompt')).to.equal('login');
      await tokensOf({ ...again, checks });

      upstream.staleNext(3600);
      const stale = await login('fresh@acme.test', { sub: 'up-fresh', email: 'fresh@acme.test', email_verified: true }, { agent: lanyard, extra: { prompt: 'login' } });
      expect(stale.page?.status).to.equal(401);
      expect(stale.page?.text).to.contain('Sign in to your company again');
    });

    it('asks the upstream for a fresh sign-in when the relying party asks for prompt=login in a browser signed in to nothing here', async () => {
      // A first login takes the upstream's session…
      await tokensOf(await login('first@acme.test', { sub: 'up-first', email: 'first@acme.test', email_verified: true }));
      expect(upstream.requests.at(-1)!.get('max_age')).to.equal(null);
      // … but prompt=login asks for a login now, whatever session the upstream keeps.
      const prompted = await login('first@acme.test', { sub: 'up-first', email: 'first@acme.test', email_verified: true }, { extra: { prompt: 'login' } });
      expect(upstream.requests.at(-1)!.get('max_age')).to.equal('0');
      expect(upstream.requests.at(-1)!.get('prompt')).to.equal('login');
      expect((await tokensOf(prompted)).claims()!.sub).to.be.a('string');
      upstream.staleNext(3600);
      const stale = await login('first@acme.test', { sub: 'up-first', email: 'first@acme.test', email_verified: true }, { extra: { prompt: 'login' } });
      expect(stale.page?.status, 'an upstream login from an hour ago is not the one asked for').to.equal(401);
    });

    it('passes the relying party’s max_age to the upstream in a browser signed in to nothing here, and refuses a sign-in older than it', async () => {
      const claims = { sub: 'up-aged', email: 'aged@acme.test', email_verified: true };
      const aged = await login('aged@acme.test', claims, { extra: { max_age: '300' } });
      expect(upstream.requests.at(-1)!.get('max_age'), 'the upstream is asked for a sign-in no older than the app accepts').to.equal('300');
      expect(upstream.requests.at(-1)!.get('prompt'), 'a recent upstream session may answer').to.equal(null);
      expect((await tokensOf(aged)).claims()!.sub).to.be.a('string');
      // An upstream that answers from an older sign-in than max_age allows (it ignored max_age).
      upstream.staleNext(3600);
      const stale = await login('aged@acme.test', claims, { extra: { max_age: '300' } });
      expect(stale.page?.status).to.equal(401);
      expect(stale.page?.text).to.contain('The app asked for a recent sign-in');
      // One within it is taken.
      upstream.staleNext(120);
      expect((await tokensOf(await login('aged@acme.test', claims, { extra: { max_age: '300' } }))).claims()!.sub).to.be.a('string');
    });

    it('re-authenticates a console admin through the connector, asking the upstream for a fresh sign-in', async () => {
      // The organization's admin is on its own domain, so the SSO policy holds for them too.
      upstream.signInAs({ sub: 'up-boss', email: 'boss@acme.test', email_verified: true });
      const lanyard = supertest.agent(server.url);
      let location = '/account';
      let uid: string | undefined;
      for (let i = 0; i < 10 && !uid; i += 1) {
        const res = await lanyard.get(location);
        location = res.headers.location!.replace(server.url, '');
        uid = /^\/interaction\/([^/?]+)$/.exec(location)?.[1];
      }
      const page = await lanyard.get(`/interaction/${uid}`);
      const identified = await lanyard.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(page.text), email: 'boss@acme.test' });
      const signedIn = await follow(lanyard, identified.headers.location!);
      expect(signedIn.page?.status).to.equal(200);
      expect(signedIn.page?.text).to.contain('boss@acme.test');
      expect(upstream.requests.at(-1)!.get('max_age'), 'a first login takes the upstream’s session').to.equal(null);
      const boss = (await server.registry.accounts.findByEmail('boss@acme.test'))!;
      await server.registry.db.query("INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'admin', now())", [sso.org.id, boss.id]);
      const org = `/admin/organizations/${sso.org.id}`;

      now += 11 * 60_000;
      const form = await lanyard.get(`${org}/connectors/new?kind=oidc`);
      const refused = await lanyard.post(`${org}/connectors`).type('form').send({ _csrf: csrfFrom(form.text), kind: 'oidc', name: 'Second', issuer: upstream.issuer, clientId: 'x', clientSecret: 'y' });
      expect(refused.status).to.equal(403);
      expect(refused.text).to.contain('Confirm it’s you');
      const href = /id="log-in-again" href="([^"]+)"/.exec(refused.text)![1]!.replace(/&amp;/g, '&');
      now = Date.now();
      location = href;
      uid = undefined;
      for (let i = 0; i < 10 && !uid; i += 1) {
        const res = await lanyard.get(location);
        location = res.headers.location!.replace(server.url, '');
        uid = /^\/interaction\/([^/?]+)$/.exec(location)?.[1];
      }
      const again = await lanyard.get(`/interaction/${uid}`);
      const reidentified = await lanyard.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(again.text), email: 'boss@acme.test' });
      const back = await follow(lanyard, reidentified.headers.location!);
      expect(upstream.requests.at(-1)!.get('max_age'), 'the upstream is asked for a new sign-in').to.equal('0');
      expect(upstream.requests.at(-1)!.get('prompt')).to.equal('login');
      expect(back.page?.status).to.equal(200);
      const retried = await lanyard.get(`${org}/connectors/new?kind=oidc`);
      const done = await lanyard.post(`${org}/connectors`).type('form').send({ _csrf: csrfFrom(retried.text), kind: 'oidc', name: 'Second', issuer: upstream.issuer, clientId: 'x', clientSecret: 'y' });
      expect(done.status, 'the change goes through after the fresh SSO login').to.equal(303);
    });

    it('migrates a Trello member at the address through the SSO login, and never by its Trello password', async () => {
      const member = legacyMember({ emails: [{ address: 'trello.user@acme.test', verified: true, primary: true }] });
      await importLegacy(server.registry, [member]);
      const lanyard = supertest.agent(server.url);
      const { url } = await request();
      const first = await lanyard.get(url.pathname + url.search);
      const uid = /\/interaction\/([^/?#]+)/.exec(first.headers.location!)![1]!;
      const page = await lanyard.get(`/interaction/${uid}`);
      const typed = await lanyard.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(page.text), email: 'trello.user@acme.test', password: TRELLO_PASSWORD });
      expect(typed.headers.location).to.equal(`/interaction/${uid}/sso/${sso.connectorId}?login_hint=trello.user%40acme.test`);
      expect((await server.registry.trello.linking.findByMemberId(member.id))?.linked_account_id).to.equal(null);

      const tokens = await tokensOf(await login('trello.user@acme.test', { sub: 'up-trello', email: 'trello.user@acme.test', email_verified: true }));
      const stored = await server.registry.trello.linking.findByMemberId(member.id);
      expect(stored?.linked_by).to.equal('sso');
      expect(stored?.linked_account_id).to.equal(tokens.claims()!.sub);
      expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-trello')).to.deep.equal({ account_id: stored!.linked_account_id });
    });

    it('refuses a retired address and tells its account which address to use', async () => {
      const member = legacyMember({ emails: [{ address: 'keep@acme.test', verified: true, primary: true }, { address: 'old@acme.test', verified: true }] });
      await importLegacy(server.registry, [member]);
      await tokensOf(await login('keep@acme.test', { sub: 'up-keep', email: 'keep@acme.test', email_verified: true }));
      const retired = await login('old@acme.test', { sub: 'up-old', email: 'old@acme.test', email_verified: true });
      expect(retired.page?.status).to.equal(200);
      expect(retired.page?.text).to.contain('Check your email');
      expect(await server.registry.accounts.findByEmail('old@acme.test')).to.equal(undefined);
    });

    it('answers an address on a domain nobody holds with the password page, as before', async () => {
      const result = await login('someone@gmail.test', undefined);
      expect(result.identified.status).to.equal(303);
      expect(result.identified.headers.location).to.equal(`/interaction/${result.uid}/password?email=someone%40gmail.test`);
      expect((await result.lanyard.get(result.identified.headers.location!)).text).to.contain('name="password"');
    });
  });

  describe('with the ID token carrying the address', () => {
    beforeEach(() => start({ idTokenClaims: true }));

    it('does not ask userinfo when the ID token has what it needs', async () => {
      await tokensOf(await login('lean@acme.test', { sub: 'up-lean', email: 'lean@acme.test', email_verified: true }));
      expect(upstream.userinfoRequests).to.equal(0);
    });
  });

  describe('when the upstream goes down after it has worked', () => {
    beforeEach(() => start());

    it('notices at the next login once the discovery document is a minute old: a clear page, a failing health line, and the console test says so at once', async () => {
      await tokensOf(await login('early@acme.test', { sub: 'up-early', email: 'early@acme.test', email_verified: true }));
      await upstream.close();
      // The console's test asks the upstream now, not the document fetched for the login.
      const { agent: admin } = await signInToAccount(server.url, sso.admin.email);
      const list = await admin.get(`/admin/organizations/${sso.org.id}/connectors/${sso.connectorId}`);
      const tested = await admin.post(`/admin/organizations/${sso.org.id}/connectors/${sso.connectorId}/test`).type('form').send({ _csrf: csrfFrom(list.text) });
      expect(tested.status).to.equal(502);
      expect(tested.text).to.contain('can’t be reached');
      // A person's login a minute later is refused here, not by the browser after it left.
      now += DISCOVERY_TTL_MS + 1_000;
      const result = await login('late@acme.test', { sub: 'up-late', email: 'late@acme.test', email_verified: true });
      expect(result.page?.status).to.equal(502);
      expect(result.page?.text).to.contain('Your company’s sign-in can’t be reached right now');
      const row = (await server.registry.db.query<{ last_failure: string | null }>('SELECT last_failure FROM connectors WHERE id = $1', [sso.connectorId])).rows[0]!;
      expect(row.last_failure).to.equal('upstream unreachable');
    });
  });

  describe('with the upstream down', () => {
    beforeEach(async () => {
      await start();
      await upstream.close();
    });

    it('gives the person a clear page and the admin a health line', async () => {
      const result = await login('down@acme.test', { sub: 'up-down', email: 'down@acme.test', email_verified: true });
      expect(result.page?.status).to.equal(502);
      expect(result.page?.text).to.contain('Your company’s sign-in can’t be reached right now');
      const row = (await server.registry.db.query<{ last_failure: string | null; last_failure_at: Date | null }>('SELECT last_failure, last_failure_at FROM connectors WHERE id = $1', [sso.connectorId])).rows[0]!;
      expect(row.last_failure).to.equal('upstream unreachable'); // a category, never the network's own words
      expect(row.last_failure_at).to.be.instanceOf(Date);
    });
  });
});
