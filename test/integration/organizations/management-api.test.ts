import { expect } from 'chai';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { startDns, type TestDns } from '../../helpers/dns-server.ts';
import { PageDriver } from '../../helpers/login-driver.ts';
import { signInToAccount } from '../../helpers/account-pages.ts';
import { MANAGE_ORGANIZATIONS_SCOPE } from '../../../src/identity/claims-release.ts';

/**
 * The organizations management API (docs/flows/organizations.md "Management API", decision 0032)
 * end to end: access tokens obtained by real relying parties (openid-client, authorization code
 * with PKCE) through the real login and consent pages, domains verified against a real DNS
 * server on loopback, the decision point consulted on every call.
 */
describe('organizations: management API', () => {
  let dns: TestDns;
  let server: TestServer;
  let n = 0;
  const unique = () => `${Date.now().toString(36)}${(n += 1)}`;
  const SCOPE = MANAGE_ORGANIZATIONS_SCOPE;

  before(async () => {
    await resetDatabase();
    dns = await startDns();
    server = await startTestServer({ overrides: { dnsServers: [dns.server], domainVerification: { httpScheme: 'http', httpPort: 9, timeoutSeconds: 2, recheckIntervalSeconds: 3600 } } });
  });
  after(async () => {
    await server?.close();
    await dns?.close();
  });

  type Client = Awaited<ReturnType<typeof createClient>>;

  /** An access token for `email` through the real pages: authorization code + PKCE with openid-client. */
  async function tokenFor(email: string, client: Client, scope = `openid ${SCOPE}`) {
    const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: client.redirectUri, scope, state, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const driver = new PageDriver(server.url);
    const callback = await driver.authorize(url.href, { email, password: PASSWORD });
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state });
    return { token: tokens.access_token, tokens, driver, config };
  }

  let firstParty: Client;
  before(async () => {
    firstParty = await createClient(server.registry, { firstParty: true, name: 'Admin Tool' });
  });

  interface Answer { status: number; headers: Headers; body: Record<string, any>; text: string }

  /** One call of the API with a bearer token (and nothing else: no cookie). */
  async function api(token: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(`${server.url}/api/organizations${path}`, {
      method,
      headers: {
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: Record<string, any> = {};
    if ((res.headers.get('content-type') ?? '').includes('json')) parsed = JSON.parse(text) as Record<string, any>;
    return { status: res.status, headers: res.headers, body: parsed, text };
  }

  /** An admin with a token (first-party client) and an organization. */
  async function adminWithOrg(name = 'Acme') {
    const admin = await createAccount(server.registry, { email: `admin-${unique()}@admins.example` });
    const created = await server.registry.organizations.service.create(admin.id, name);
    if (!created.ok) throw new Error(created.problem);
    const { token } = await tokenFor(admin.email, firstParty);
    return { admin, org: created.organization, token };
  }

  /** Adds `domain` through the API and proves it with its TXT record on the test DNS server. */
  async function verifiedDomain(token: string, orgId: string, domain: string) {
    const added = await api(token, 'POST', `/${orgId}/domains`, { domain });
    expect(added.status, added.text).to.equal(201);
    dns.txt.set(domain, [[added.body.domain.instructions.txtValue]]);
    const verified = await api(token, 'POST', `/${orgId}/domains/${added.body.domain.id}/verify`);
    expect(verified.status, verified.text).to.equal(200);
    return added.body.domain.id as string;
  }

  const events = async (orgId: string) => (await server.registry.db.query<{ action: string; actor_id: string; target_id: string | null; detail: Record<string, unknown> | null }>(
    'SELECT action, actor_id, target_id, detail FROM organization_events WHERE organization_id = $1 ORDER BY id', [orgId])).rows;

  describe('authorization by the access token', () => {
    it('advertises the scope in discovery', async () => {
      const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as { scopes_supported: string[] };
      expect(discovery.scopes_supported).to.include(SCOPE);
    });

    it('a third-party client gets the scope on the consent page, which says what it allows, then calls the API as the admin', async () => {
      const { admin, org } = await adminWithOrg('Consent Corp');
      const thirdParty = await createClient(server.registry, { name: 'Acme Provisioner' });
      const { token, tokens, driver } = await tokenFor(admin.email, thirdParty);
      expect(driver.seen).to.include('consent');
      const page = driver.consentPage!;
      expect(page).to.contain(`data-scope="${SCOPE}"`);
      expect(page).to.contain('Manage the organizations you administer');
      expect(page).to.contain('deactivate and delete the accounts they manage');
      expect(tokens.scope?.split(' ')).to.include(SCOPE);
      const mine = await api(token, 'GET', '');
      expect(mine.status, mine.text).to.equal(200);
      expect(mine.body.organizations).to.deep.equal([{ id: org.id, name: 'Consent Corp', role: 'admin', createdAt: org.createdAt.toISOString() }]);
      // Settings → Connected apps names the grant in the consent page's words.
      const { agent } = await signInToAccount(server.url, admin.email);
      const apps = await agent.get('/account/apps');
      expect(apps.status).to.equal(200);
      expect(apps.text).to.contain('Acme Provisioner').and.contain('Manage the organizations you administer');
    });

    it('a first-party client gets the scope only through a consent page that names it; a first-party native app too', async () => {
      const admin = await createAccount(server.registry, { email: `admin-${unique()}@admins.example` });
      const { token, tokens, driver } = await tokenFor(admin.email, firstParty);
      expect(driver.seen, 'acting as an admin is never granted silently').to.include('consent');
      expect(driver.consentPage).to.contain(`data-scope="${SCOPE}"`).and.contain('Manage the organizations you administer');
      expect(tokens.scope?.split(' ')).to.include(SCOPE);
      expect((await api(token, 'GET', '')).body).to.deep.equal({ organizations: [] });
      // Without the scope our own product is not asked at all (the first-party rule).
      const other = await createAccount(server.registry, { email: `plain-${unique()}@admins.example` });
      expect((await tokenFor(other.email, firstParty, 'openid email')).driver.seen).to.not.include('consent');
      // A first-party native app (always shown the page, RFC 8252 §8.6) lists the scope on it.
      const native = await createClient(server.registry, { firstParty: true, kind: 'native', name: 'Admin App', redirectUris: ['http://127.0.0.1/callback'] });
      const nativeConfig = await oidc.discovery(new URL(server.url), native.clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
      const nativeUrl = oidc.buildAuthorizationUrl(nativeConfig, { redirect_uri: native.redirectUri, scope: `openid ${SCOPE}`, state: oidc.randomState(), code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
      const nativeDriver = new PageDriver(server.url);
      await nativeDriver.authorize(nativeUrl.href, { email: other.email, password: PASSWORD });
      expect(nativeDriver.consentPage).to.contain(`data-scope="${SCOPE}"`).and.contain('Manage the organizations you administer');
    });

    it('asks for a new login before granting the scope to a session whose login is not recent (a stale or stolen session mints no admin token)', async () => {
      const admin = await createAccount(server.registry, { email: `stale-${unique()}@admins.example` });
      const driver = new PageDriver(server.url);
      const config = await oidc.discovery(new URL(server.url), firstParty.clientId, firstParty.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
      const start = async (scope: string, extra: Record<string, string> = {}) => {
        const verifier = oidc.randomPKCECodeVerifier();
        return oidc.buildAuthorizationUrl(config, { redirect_uri: firstParty.redirectUri, scope, state: oidc.randomState(), code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra });
      };
      await driver.authorize((await start('openid')).href, { email: admin.email, password: PASSWORD });
      // Age the session's login past the privileged window (as an attacker's stolen cookie would be).
      await server.registry.db.query(`UPDATE oidc_payloads SET payload = jsonb_set(payload, '{loginTs}', to_jsonb((payload->>'loginTs')::bigint - 1200)) WHERE model = 'Session' AND account_id = $1`, [admin.id]);
      const plain = await driver.agent.get(driver.path((await start('openid')).href));
      expect(plain.status, 'an ordinary sign-in still reuses the session').to.equal(303);
      expect(plain.headers.location).to.match(/^http:\/\/127\.0\.0\.1.*code=/);
      const silent = await driver.agent.get(driver.path((await start(`openid ${SCOPE}`, { prompt: 'none' })).href));
      expect(silent.headers.location, 'prompt=none: login_required').to.contain('error=login_required');
      const asked = await driver.agent.get(driver.path((await start(`openid ${SCOPE}`)).href));
      expect(asked.status).to.equal(303);
      expect(asked.headers.location, 'to the login pages, not a code').to.match(/^\/interaction\//);
    });

    it('takes the Bearer scheme in any case (RFC 9110 §11.1), and stops a deleted client’s tokens at once', async () => {
      const { admin } = await adminWithOrg();
      const app = await createClient(server.registry, { name: 'Soon Deleted' });
      const { token } = await tokenFor(admin.email, app);
      for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
        expect((await api(undefined, 'GET', '', undefined, { Authorization: `${scheme} ${token}` })).status, scheme).to.equal(200);
      }
      await server.registry.clients.delete(app.clientId);
      // The client lookup is cached for CLIENT_CACHE_SECONDS; the test configuration caches nothing.
      const gone = await api(token, 'GET', '');
      expect(gone.status).to.equal(401);
      expect(gone.body).to.include({ error: 'invalid_token' });
    });

    it('refuses a token without the scope: 403 insufficient_scope naming it (RFC 6750 §3.1)', async () => {
      const { admin, org } = await adminWithOrg();
      const { token } = await tokenFor(admin.email, firstParty, 'openid email');
      for (const path of ['', `/${org.id}`, `/${org.id}/domains`]) {
        const res = await api(token, 'GET', path);
        expect(res.status, path).to.equal(403);
        expect(res.headers.get('www-authenticate')).to.equal(`Bearer realm="lanyard", error="insufficient_scope", scope="${SCOPE}"`);
        expect(res.body).to.include({ error: 'insufficient_scope', scope: SCOPE });
        expect(res.body.error_description).to.be.a('string');
      }
      // Nothing happened for a write either.
      const write = await api(token, 'POST', `/${org.id}/domains`, { domain: `nope-${unique()}.test` });
      expect(write.status).to.equal(403);
      expect((await events(org.id)).map((e) => e.action)).to.deep.equal(['organization.created']);
    });

    it('refuses no token, an unknown token, a revoked one, an expired one and a client-credentials token: 401 invalid_token', async () => {
      const none = await api(undefined, 'GET', '');
      expect(none.status).to.equal(401);
      // No authentication information: the challenge names no error (RFC 6750 §3.1).
      expect(none.headers.get('www-authenticate')).to.equal(`Bearer realm="lanyard", scope="${SCOPE}"`);
      expect(none.body.error).to.equal('invalid_token');

      const unknown = await api('x'.repeat(43), 'GET', '');
      expect(unknown.status).to.equal(401);
      expect(unknown.headers.get('www-authenticate')).to.equal('Bearer realm="lanyard", error="invalid_token"');
      expect(unknown.body).to.include({ error: 'invalid_token' });
      expect((await api(undefined, 'GET', '', undefined, { Authorization: 'Basic YTpi' })).status).to.equal(401);

      const { admin } = await adminWithOrg();
      const { token, config } = await tokenFor(admin.email, firstParty);
      expect((await api(token, 'GET', '')).status).to.equal(200);
      await oidc.tokenRevocation(config, token);
      expect((await api(token, 'GET', '')).status, 'revoked').to.equal(401);

      // An access token whose lifetime has run out (the engine's own model, three seconds long:
      // its expiry counts whole seconds, so a one-second token could be over before the first
      // check on a busy machine; a clean CI run saw 401 for "still valid").
      const grant = new server.registry.provider.Grant({ accountId: admin.id, clientId: firstParty.clientId });
      grant.addOIDCScope(`openid ${SCOPE}`);
      const grantId = await grant.save();
      const short = new server.registry.provider.AccessToken({ accountId: admin.id, clientId: firstParty.clientId, grantId, scope: `openid ${SCOPE}`, expiresIn: 3 } as never);
      const value = await short.save();
      expect((await api(value, 'GET', '')).status, 'still valid').to.equal(200);
      await new Promise((resolve) => setTimeout(resolve, 3100));
      expect((await api(value, 'GET', '')).status, 'expired').to.equal(401);

      const service = await createClient(server.registry, { kind: 'service', name: 'Cron' });
      const serviceConfig = await oidc.discovery(new URL(server.url), service.clientId, service.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
      const cc = await oidc.clientCredentialsGrant(serviceConfig, { scope: SCOPE });
      expect((await api(cc.access_token, 'GET', '')).status, 'client credentials: no admin behind it').to.equal(401);
    });

    it('ignores cookies: a signed-in admin’s browser session does not authorize it', async () => {
      const { admin, org } = await adminWithOrg();
      const { agent } = await signInToAccount(server.url, admin.email);
      expect((await agent.get('/admin')).status, 'the session works for the console').to.equal(200);
      const res = await agent.get(`/api/organizations/${org.id}`);
      expect(res.status).to.equal(401);
      expect(res.body.error).to.equal('invalid_token');
      const write = await agent.post(`/api/organizations/${org.id}/domains`).send({ domain: `cookie-${unique()}.test` });
      expect(write.status).to.equal(401);
      // With a token lacking the scope, the session does not make up for it either.
      const { token } = await tokenFor(admin.email, firstParty, 'openid');
      expect((await agent.get(`/api/organizations/${org.id}`).set('Authorization', `Bearer ${token}`)).status).to.equal(403);
    });

    it('asks the decision point: two-step becoming required after the token was issued, or the admin being deactivated, makes it 401', async () => {
      const { admin, org, token } = await adminWithOrg();
      expect((await api(token, 'GET', `/${org.id}`)).status).to.equal(200);
      await server.registry.db.query('UPDATE accounts SET two_step_required = true WHERE id = $1', [admin.id]);
      const refused = await api(token, 'GET', `/${org.id}`);
      expect(refused.status).to.equal(401);
      expect(refused.headers.get('www-authenticate')).to.equal('Bearer realm="lanyard", error="invalid_token"');
      expect(refused.body).to.include({ error: 'invalid_token' });
      expect(refused.body.reason).to.be.a('string');
      await server.registry.db.query('UPDATE accounts SET two_step_required = false WHERE id = $1', [admin.id]);
      expect((await api(token, 'GET', `/${org.id}`)).status, 'the policy relaxed again').to.equal(200);

      // An admin whose account is deactivated (by the operator: a co-admin may not, below) is refused at once.
      const domain = `deact-${unique()}.test`;
      const colleague = await createAccount(server.registry, { email: `second@${domain}` });
      const domainId = await verifiedDomain(token, org.id, domain);
      const { token: colleagueToken } = await tokenFor(colleague.email, firstParty);
      await server.registry.db.query(`INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'admin', now())`, [org.id, colleague.id]);
      expect((await api(colleagueToken, 'GET', `/${org.id}`)).status).to.equal(200);
      expect((await api(token, 'POST', `/${org.id}/domains/${domainId}/claim`)).body).to.deep.equal({ claimed: 1 });
      const coAdmin = await api(token, 'POST', `/${org.id}/accounts/${colleague.id}/deactivate`);
      expect([coAdmin.status, coAdmin.body.error], 'one admin cannot lock another out').to.deep.equal([409, 'account.admin']);
      await server.registry.db.query(`UPDATE accounts SET status = 'deactivated' WHERE id = $1`, [colleague.id]);
      const gone = await api(colleagueToken, 'GET', `/${org.id}`);
      expect(gone.status).to.equal(401);
      expect(gone.body).to.include({ error: 'invalid_token' });
    });
  });

  describe('one organization’s admin and another’s resources', () => {
    it('answers 404 for org B’s organization, domains, accounts and invitations through org A — like ids that do not exist — and changes nothing', async () => {
      const a = await adminWithOrg('A');
      const b = await adminWithOrg('B');
      const domainB = `b-${unique()}.test`;
      const userB = await createAccount(server.registry, { email: `user@${domainB}` });
      const domainIdB = await verifiedDomain(b.token, b.org.id, domainB);
      expect((await api(b.token, 'POST', `/${b.org.id}/domains/${domainIdB}/claim`)).body).to.deep.equal({ claimed: 1 });
      const invitationB = await api(b.token, 'POST', `/${b.org.id}/invitations`, { email: `new-${unique()}@example.com` });
      expect(invitationB.status).to.equal(201);

      const orgAnswers = await Promise.all([
        api(a.token, 'GET', `/${b.org.id}`),
        api(a.token, 'GET', `/${b.org.id}/domains`),
        api(a.token, 'GET', `/${b.org.id}/accounts`),
        api(a.token, 'GET', `/${b.org.id}/audit`),
        api(a.token, 'POST', `/${b.org.id}/accounts/${userB.id}/deactivate`),
        api(a.token, 'GET', '/org_doesnotexist0000000000'),
      ]);
      for (const res of orgAnswers) {
        expect(res.status).to.equal(404);
        expect(res.body.error).to.equal('organization.not_found');
      }
      const through = [
        [await api(a.token, 'GET', `/${a.org.id}/domains/${domainIdB}`), 'domain.not_found'],
        [await api(a.token, 'POST', `/${a.org.id}/domains/${domainIdB}/verify`), 'domain.not_found'],
        [await api(a.token, 'DELETE', `/${a.org.id}/domains/${domainIdB}`), 'domain.not_found'],
        [await api(a.token, 'GET', `/${a.org.id}/domains/${domainIdB}/claim`), 'domain.not_found'],
        [await api(a.token, 'GET', `/${a.org.id}/accounts/${userB.id}`), 'account.not_found'],
        [await api(a.token, 'GET', `/${a.org.id}/accounts/acc_doesnotexist0000000000`), 'account.not_found'],
        [await api(a.token, 'PATCH', `/${a.org.id}/accounts/${userB.id}`, { name: 'Hijacked' }), 'account.not_found'],
        [await api(a.token, 'POST', `/${a.org.id}/accounts/${userB.id}/deactivate`), 'account.not_found'],
        [await api(a.token, 'DELETE', `/${a.org.id}/accounts/${userB.id}`), 'account.not_found'],
        [await api(a.token, 'DELETE', `/${a.org.id}/invitations/${invitationB.body.invitation.id}`), 'invitation.not_found'],
        [await api(a.token, 'DELETE', `/${a.org.id}/admins/${b.admin.id}`), 'admin.not_found'],
      ] as const;
      for (const [res, code] of through) {
        expect(res.status, code).to.equal(404);
        expect(res.body.error).to.equal(code);
      }
      const user = await server.registry.accounts.findById(userB.id);
      expect(user).to.include({ status: 'active', name: 'Ada Lovelace' });
      expect((await api(b.token, 'GET', `/${b.org.id}/invitations`)).body.invitations).to.have.length(1);
      expect((await events(a.org.id)).map((e) => e.action)).to.deep.equal(['organization.created']);
    });
  });

  describe('a member who is not an admin', () => {
    it('gets 403 organization.forbidden for what only admins do, and changes nothing', async () => {
      const { org } = await adminWithOrg();
      const member = await createAccount(server.registry, { email: `member-${unique()}@admins.example` });
      await server.registry.db.query(`INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'member', now())`, [org.id, member.id]);
      const { token } = await tokenFor(member.email, firstParty);
      expect((await api(token, 'GET', '')).body.organizations.map((o: { id: string; role: string }) => [o.id, o.role])).to.deep.equal([[org.id, 'member']]);
      for (const [method, path, body] of [['GET', `/${org.id}`], ['POST', `/${org.id}/domains`, { domain: `m-${unique()}.test` }], ['GET', `/${org.id}/accounts`], ['POST', `/${org.id}/invitations`, { email: 'x@example.com' }], ['GET', `/${org.id}/audit`]] as const) {
        const res = await api(token, method, path, body);
        expect([res.status, res.body.error], `${method} ${path}`).to.deep.equal([403, 'organization.forbidden']);
      }
      expect((await events(org.id)).map((e) => e.action)).to.deep.equal(['organization.created']);
    });
  });

  describe('endpoints', () => {
    it('domains: add (201, then 200 for the same), list, get, verify against the real DNS server (409 first, then 200), remove', async () => {
      const { org, token, admin } = await adminWithOrg();
      const domain = `dom-${unique()}.test`;
      const added = await api(token, 'POST', `/${org.id}/domains`, { domain: ` ${domain.toUpperCase()}. ` });
      expect(added.status, added.text).to.equal(201);
      expect(added.headers.get('location')).to.equal(`/api/organizations/${org.id}/domains/${added.body.domain.id}`);
      expect(added.body.domain).to.include({ domain, state: 'pending' });
      expect(added.body.domain.instructions.txtValue).to.match(/^lanyard-domain-verification=/);
      const again = await api(token, 'POST', `/${org.id}/domains`, { domain });
      expect(again.status).to.equal(200);
      expect(again.body).to.deep.include({ existing: true });
      expect(again.body.domain.id).to.equal(added.body.domain.id);

      const list = await api(token, 'GET', `/${org.id}/domains`);
      expect(list.body.domains.map((d: { domain: string }) => d.domain)).to.deep.equal([domain]);

      // Nothing published yet: 409 with each method's finding, and the domain keeps the error.
      const failed = await api(token, 'POST', `/${org.id}/domains/${added.body.domain.id}/verify`);
      expect(failed.status).to.equal(409);
      expect(failed.body.error).to.equal('verification.not_found');
      expect(failed.body.checks.map((c: { method: string }) => c.method)).to.deep.equal(['dns', 'https']);
      expect(failed.body.domain).to.include({ state: 'pending' });
      expect(failed.body.domain.lastError).to.be.a('string');

      dns.txt.set(domain, [['v=spf1 -all'], [added.body.domain.instructions.txtValue]]);
      const verified = await api(token, 'POST', `/${org.id}/domains/${added.body.domain.id}/verify`);
      expect(verified.status, verified.text).to.equal(200);
      expect(verified.body).to.deep.include({ method: 'dns' });
      expect(verified.body.domain).to.include({ state: 'verified' });
      expect(dns.queries.some((q) => q.name === domain)).to.equal(true);
      const one = await api(token, 'GET', `/${org.id}/domains/${added.body.domain.id}`);
      expect(one.body.domain).to.include({ id: added.body.domain.id, state: 'verified' });

      const removed = await api(token, 'DELETE', `/${org.id}/domains/${added.body.domain.id}`);
      expect(removed.status).to.equal(200);
      expect((await api(token, 'GET', `/${org.id}/domains/${added.body.domain.id}`)).status).to.equal(404);

      // Every action is in the audit trail, by the admin, through this client.
      const trail = (await events(org.id)).slice(1);
      expect(trail.map((e) => e.action)).to.deep.equal(['domain.added', 'domain.verification_failed', 'domain.verified', 'domain.removed']);
      for (const e of trail) {
        expect(e.actor_id).to.equal(admin.id);
        expect(e.detail).to.include({ clientId: firstParty.clientId });
      }
    });

    it('domains: refusals with the services’ codes (400 malformed, public, IP; 409 taken, manages accounts)', async () => {
      const { org, token } = await adminWithOrg();
      const cases: [unknown, number, string][] = [
        [{ domain: 'https://example.org/x' }, 400, 'domain.malformed'],
        [{ domain: '' }, 400, 'domain.empty'],
        [{ domain: 'gmail.com' }, 400, 'domain.public_email'],
        [{ domain: '127.0.0.1' }, 400, 'domain.ip_address'],
        [{ domain: 'localhost' }, 400, 'domain.single_label'],
      ];
      for (const [body, status, code] of cases) {
        const res = await api(token, 'POST', `/${org.id}/domains`, body);
        expect(res.status, JSON.stringify(body)).to.equal(status);
        expect(res.body.error).to.equal(code);
        expect(res.body.error_description).to.be.a('string').and.not.empty;
      }
      const other = await adminWithOrg('Other');
      const held = `held-${unique()}.test`;
      await verifiedDomain(other.token, other.org.id, held);
      const taken = await api(token, 'POST', `/${org.id}/domains`, { domain: held });
      expect([taken.status, taken.body.error]).to.deep.equal([409, 'domain.taken']);

      const mine = `mine-${unique()}.test`;
      await createAccount(server.registry, { email: `someone@${mine}` });
      const domainId = await verifiedDomain(token, org.id, mine);
      expect((await api(token, 'POST', `/${org.id}/domains/${domainId}/claim`)).body).to.deep.equal({ claimed: 1 });
      const keep = await api(token, 'DELETE', `/${org.id}/domains/${domainId}`);
      expect([keep.status, keep.body.error]).to.deep.equal([409, 'domain.manages_accounts']);
    });

    it('claim: preview with paging changes nothing, claim takes the accounts; a pending domain cannot claim (409)', async () => {
      const { org, token } = await adminWithOrg();
      const domain = `claim-${unique()}.test`;
      const pending = await api(token, 'POST', `/${org.id}/domains`, { domain: `pending-${domain}` });
      const notYet = await api(token, 'GET', `/${org.id}/domains/${pending.body.domain.id}/claim`);
      expect([notYet.status, notYet.body.error]).to.deep.equal([409, 'domain.not_verified']);
      expect((await api(token, 'POST', `/${org.id}/domains/${pending.body.domain.id}/claim`)).status).to.equal(409);

      const ada = await createAccount(server.registry, { email: `ada@${domain}` });
      await createAccount(server.registry, { email: `bob@${domain}` });
      const domainId = await verifiedDomain(token, org.id, domain);
      const first = await api(token, 'GET', `/${org.id}/domains/${domainId}/claim?limit=1`);
      expect(first.status, first.text).to.equal(200);
      expect(first.body).to.include({ domain, count: 2 });
      expect(first.body.accounts.map((a: { email: string }) => a.email)).to.deep.equal([`ada@${domain}`]);
      const second = await api(token, 'GET', `/${org.id}/domains/${domainId}/claim?limit=1&cursor=${encodeURIComponent(first.body.next)}`);
      expect(second.body.accounts.map((a: { email: string }) => a.email)).to.deep.equal([`bob@${domain}`]);
      expect((await server.registry.policy.load(ada.id))!.subject.managers, 'a preview changes nothing').to.deep.equal([]);

      expect((await api(token, 'POST', `/${org.id}/domains/${domainId}/claim`)).body).to.deep.equal({ claimed: 2 });
      expect((await server.registry.policy.load(ada.id))!.subject.managers).to.deep.equal([{ kind: 'organization', id: org.id, name: 'Acme' }]);
    });

    it('managed accounts: list with search, filter and cursor paging, CSV, get one, edit, deactivate, reactivate, delete, cancel deletion', async () => {
      const { admin, org, token } = await adminWithOrg();
      const domain = `acc-${unique()}.test`;
      const other = `acc2-${unique()}.test`;
      // Accounts that exist before the domain is verified are claimed by the admin's act.
      const ada = await createAccount(server.registry, { email: `ada@${domain}`, name: 'Ada Lovelace' });
      const bob = await createAccount(server.registry, { email: `bob@${domain}`, name: 'Bob Babbage' });
      const cy = await createAccount(server.registry, { email: `cy@${domain}`, name: '=HYPERLINK("x")' });
      const domainId = await verifiedDomain(token, org.id, domain);
      await verifiedDomain(token, org.id, other);
      expect((await api(token, 'POST', `/${org.id}/domains/${domainId}/claim`)).body).to.deep.equal({ claimed: 3 });
      // The user's own token, to see the deactivation take effect.
      const { token: adaToken, tokens: adaTokens, config } = await tokenFor(ada.email, firstParty, 'openid email');

      const page1 = await api(token, 'GET', `/${org.id}/accounts?limit=2`);
      expect(page1.status, page1.text).to.equal(200);
      expect(page1.body.accounts.map((a: { email: string }) => a.email)).to.deep.equal([ada.email, bob.email]);
      const page2 = await api(token, 'GET', `/${org.id}/accounts?limit=2&cursor=${encodeURIComponent(page1.body.next)}`);
      expect(page2.body.accounts.map((a: { email: string }) => a.email)).to.deep.equal([cy.email]);
      expect(page2.body.next).to.equal(null);
      const search = await api(token, 'GET', `/${org.id}/accounts?q=bob`);
      expect(search.body.accounts.map((a: { id: string }) => a.id)).to.deep.equal([bob.id]);

      const one = await api(token, 'GET', `/${org.id}/accounts/${ada.id}`);
      expect(one.body.account).to.include({ id: ada.id, email: ada.email, status: 'active' });

      const edited = await api(token, 'PATCH', `/${org.id}/accounts/${bob.id}`, { name: 'Robert Babbage', email: `bob@${other}` });
      expect(edited.status, edited.text).to.equal(200);
      expect(edited.body.account).to.include({ name: 'Robert Babbage', email: `bob@${other}` });
      const wrongDomain = await api(token, 'PATCH', `/${org.id}/accounts/${bob.id}`, { email: 'bob@elsewhere.example' });
      expect([wrongDomain.status, wrongDomain.body.error]).to.deep.equal([409, 'email.domain_not_verified']);
      const badName = await api(token, 'PATCH', `/${org.id}/accounts/${bob.id}`, { name: 'x'.repeat(201) });
      expect([badName.status, badName.body.error]).to.deep.equal([400, 'account.name_invalid']);
      const self = await api(token, 'POST', `/${org.id}/accounts/${admin.id}/deactivate`);
      expect([self.status, self.body.error]).to.deep.equal([403, 'account.self']);

      const deactivated = await api(token, 'POST', `/${org.id}/accounts/${ada.id}/deactivate`);
      expect(deactivated.status, deactivated.text).to.equal(200);
      expect(deactivated.body.account).to.include({ status: 'deactivated' });
      const twice = await api(token, 'POST', `/${org.id}/accounts/${ada.id}/deactivate`);
      expect([twice.status, twice.body.error]).to.deep.equal([409, 'account.state']);
      // Her tokens end with her sessions (the service's sign-out everywhere).
      expect((await fetch(`${server.url}/me`, { headers: { Authorization: `Bearer ${adaToken}` } })).status).to.equal(401);
      await oidc.refreshTokenGrant(config, adaTokens.refresh_token!).then(() => expect.fail('refreshed'), () => undefined);
      const filtered = await api(token, 'GET', `/${org.id}/accounts?status=deactivated`);
      expect(filtered.body.accounts.map((a: { id: string }) => a.id)).to.deep.equal([ada.id]);

      const reactivated = await api(token, 'POST', `/${org.id}/accounts/${ada.id}/reactivate`);
      expect(reactivated.body.account).to.include({ status: 'active' });

      const deleted = await api(token, 'DELETE', `/${org.id}/accounts/${cy.id}`);
      expect(deleted.status, deleted.text).to.equal(202);
      expect(deleted.body.account).to.include({ status: 'pending_deletion' });
      expect(Date.parse(deleted.body.deleteAfter) - Date.now()).to.be.closeTo(14 * 86_400_000, 60_000);
      const pendingList = await api(token, 'GET', `/${org.id}/accounts?status=pending_deletion`);
      expect(pendingList.body.accounts.map((a: { id: string }) => a.id)).to.deep.equal([cy.id]);
      const cancelled = await api(token, 'POST', `/${org.id}/accounts/${cy.id}/cancel-deletion`);
      expect(cancelled.body.account).to.include({ status: 'deactivated', deleteAfter: null });
      expect((await api(token, 'POST', `/${org.id}/accounts/${cy.id}/cancel-deletion`)).status).to.equal(409);

      const exported = await api(token, 'GET', `/${org.id}/accounts.csv?status=deactivated`);
      expect(exported.status).to.equal(200);
      expect(exported.headers.get('content-type')).to.match(/^text\/csv/);
      expect(exported.headers.get('content-disposition')).to.equal(`attachment; filename="accounts-${org.id}.csv"`);
      const lines = exported.text.trimEnd().split('\r\n');
      expect(lines[0]).to.equal('id,email,name,status,delete_after,created_at,managed_since');
      expect(lines).to.have.length(2);
      expect(lines[1]).to.contain(cy.id).and.contain(`"'=HYPERLINK(""x"")"`);

      const trail = (await events(org.id)).filter((e) => e.action.startsWith('account'));
      expect(trail.map((e) => [e.action, e.target_id])).to.deep.equal([
        ['accounts.claimed', domainId],
        ['account.updated', bob.id],
        ['account.deactivated', ada.id],
        ['account.reactivated', ada.id],
        ['account.deletion_scheduled', cy.id],
        ['account.deletion_cancelled', cy.id],
      ]);
      for (const e of trail) {
        expect(e.actor_id).to.equal(admin.id);
        expect(e.detail).to.include({ clientId: firstParty.clientId });
      }
      // The account's own trail names the client too.
      // …but not the admin's address or browser: the owner's page would show them as the owner's own.
      const own = await server.registry.db.query<{ type: string; client_id: string; ip: string | null; user_agent: string | null }>(`SELECT type, client_id, ip, user_agent FROM security_events WHERE account_id = $1 AND type LIKE 'organization.%' ORDER BY id`, [ada.id]);
      expect(own.rows).to.deep.equal([
        { type: 'organization.account_deactivated', client_id: firstParty.clientId, ip: null, user_agent: null },
        { type: 'organization.account_reactivated', client_id: firstParty.clientId, ip: null, user_agent: null },
      ]);
    });

    it('admins: list, invite (201), list and revoke invitations, remove an admin, never the last one', async () => {
      const { admin, org, token } = await adminWithOrg();
      const listed = await api(token, 'GET', `/${org.id}/admins`);
      expect(listed.body.admins.map((a: { accountId: string; you: boolean }) => [a.accountId, a.you])).to.deep.equal([[admin.id, true]]);

      const email = `invitee-${unique()}@example.com`;
      const invited = await api(token, 'POST', `/${org.id}/invitations`, { email });
      expect(invited.status, invited.text).to.equal(201);
      expect(invited.body.invitation).to.include({ email });
      const outbox = await server.registry.db.query(`SELECT 1 FROM mail_outbox WHERE template = 'organization-invitation' AND recipient = $1`, [email]);
      expect(outbox.rows, 'the invitation mail is queued').to.have.length(1);
      const again = await api(token, 'POST', `/${org.id}/invitations`, { email: admin.email });
      expect([again.status, again.body.error]).to.deep.equal([409, 'invitation.already_admin']);
      const bad = await api(token, 'POST', `/${org.id}/invitations`, { email: 'not an address' });
      expect([bad.status, bad.body.error]).to.deep.equal([400, 'invitation.email_invalid']);

      const open = await api(token, 'GET', `/${org.id}/invitations`);
      expect(open.body.invitations.map((i: { email: string }) => i.email)).to.deep.equal([email]);
      const revoked = await api(token, 'DELETE', `/${org.id}/invitations/${invited.body.invitation.id}`);
      expect(revoked.body).to.deep.equal({ revoked: { id: invited.body.invitation.id, email } });
      expect((await api(token, 'GET', `/${org.id}/invitations`)).body.invitations).to.deep.equal([]);
      expect((await api(token, 'DELETE', `/${org.id}/invitations/${invited.body.invitation.id}`)).status).to.equal(404);

      const last = await api(token, 'DELETE', `/${org.id}/admins/${admin.id}`);
      expect([last.status, last.body.error]).to.deep.equal([409, 'admin.last']);
      const second = await createAccount(server.registry, { email: `second-${unique()}@admins.example` });
      await server.registry.db.query(`INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'admin', now())`, [org.id, second.id]);
      const removed = await api(token, 'DELETE', `/${org.id}/admins/${second.id}`);
      expect(removed.status, removed.text).to.equal(200);
      expect(removed.body.removed).to.include({ accountId: second.id, email: second.email });
      expect((await events(org.id)).map((e) => e.action)).to.deep.equal(['organization.created', 'invitation.sent', 'invitation.revoked', 'admin.removed']);
    });

    it('organization and audit log: the dashboard, pages of the log by cursor, the CSV export', async () => {
      const { admin, org, token } = await adminWithOrg('Audit & Co');
      for (let i = 0; i < 3; i += 1) await api(token, 'POST', `/${org.id}/domains`, { domain: `log${i}-${unique()}.test` });
      const dashboard = await api(token, 'GET', `/${org.id}`);
      expect(dashboard.status).to.equal(200);
      expect(dashboard.body.organization).to.include({ id: org.id, name: 'Audit & Co', role: 'admin' });
      expect(dashboard.body).to.include({ managedAccounts: 0, pendingInvitations: 0 });
      expect(dashboard.body.domains).to.have.length(3);
      expect(dashboard.body.recent).to.have.length(4);

      const first = await api(token, 'GET', `/${org.id}/audit?limit=3`);
      expect(first.body.events.map((e: { action: string }) => e.action)).to.deep.equal(['domain.added', 'domain.added', 'domain.added']);
      const rest = await api(token, 'GET', `/${org.id}/audit?limit=3&cursor=${first.body.next}`);
      expect(rest.body.events.map((e: { action: string }) => e.action)).to.deep.equal(['organization.created']);
      expect(rest.body.next).to.equal(null);
      expect(first.body.events[0]).to.include({ actorId: admin.id, actorEmail: admin.email });
      expect(first.body.events[0].detail).to.include({ clientId: firstParty.clientId });

      const exported = await api(token, 'GET', `/${org.id}/audit.csv`);
      expect(exported.status).to.equal(200);
      expect(exported.headers.get('content-type')).to.match(/^text\/csv/);
      const lines = exported.text.trimEnd().split('\r\n');
      expect(lines[0]).to.equal('time,actor,actor_id,action,target_type,target_id,target,detail,ip,request_id');
      expect(lines.slice(1).map((l) => l.split(',')[3])).to.deep.equal(['domain.added', 'domain.added', 'domain.added', 'organization.created']);
    });
  });

  describe('renaming and deleting an organization', () => {
    it('renames it (PATCH, 200; 400 for an invisible name; 404 for another organization)', async () => {
      const { org, token } = await adminWithOrg('Old Name');
      const bad = await api(token, 'PATCH', `/${org.id}`, { name: '\u202e\u200b' });
      expect(bad.status).to.equal(400);
      expect(bad.body.error).to.equal('organization.name_invalid');
      const renamed = await api(token, 'PATCH', `/${org.id}`, { name: 'New Name' });
      expect(renamed.status, renamed.text).to.equal(200);
      expect(renamed.body).to.include({ id: org.id, name: 'New Name', role: 'admin' });
      expect((await api(token, 'GET', '')).body.organizations[0].name).to.equal('New Name');
      expect((await events(org.id)).at(-1)).to.deep.include({ action: 'organization.renamed', target_id: org.id });
      expect((await events(org.id)).at(-1)!.detail).to.include({ from: 'Old Name' });
      const other = await adminWithOrg('Someone Else');
      expect((await api(other.token, 'PATCH', `/${org.id}`, { name: 'Taken Over' })).status).to.equal(404);
      expect((await api(token, 'PATCH', `/${org.id}`, { name: 'x', extra: 1 })).status).to.equal(400);
    });

    it('deletes it (DELETE, 200), releasing the accounts it manages only with release=true, and frees its domain', async () => {
      const { admin, org, token } = await adminWithOrg('Short Lived');
      const domain = `gone-${unique()}.test`;
      const domainId = await verifiedDomain(token, org.id, domain);
      const worker = await createAccount(server.registry, { email: `worker@${domain}` });
      expect((await api(token, 'POST', `/${org.id}/domains/${domainId}/claim`)).status).to.equal(200);
      const refused = await api(token, 'DELETE', `/${org.id}`);
      expect(refused.status).to.equal(409);
      expect(refused.body.error).to.equal('organization.manages_accounts');
      expect((await api(token, 'DELETE', `/${org.id}?release=maybe`)).status, 'release is true or false').to.equal(400);

      // A deactivated account stands in the way: released, nobody could reactivate it.
      expect((await api(token, 'POST', `/${org.id}/accounts/${worker.id}/deactivate`)).status).to.equal(200);
      const blocked = await api(token, 'DELETE', `/${org.id}?release=true`);
      expect(blocked.status).to.equal(409);
      expect(blocked.body).to.include({ error: 'release.deactivated_accounts', deactivated: 1 });
      expect((await api(token, 'POST', `/${org.id}/accounts/${worker.id}/reactivate`)).status).to.equal(200);

      const stranger = await adminWithOrg('Stranger');
      expect((await api(stranger.token, 'DELETE', `/${org.id}?release=true`)).status, 'another organization’s admin').to.equal(404);
      const deleted = await api(token, 'DELETE', `/${org.id}?release=true`);
      expect(deleted.status, deleted.text).to.equal(200);
      expect(deleted.body).to.deep.equal({ deleted: true, released: 1 });
      expect((await api(token, 'GET', `/${org.id}`)).status).to.equal(404);
      expect((await api(token, 'DELETE', `/${org.id}`)).status, 'deleting twice').to.equal(404);
      expect((await api(token, 'GET', '')).body.organizations).to.deep.equal([]);
      expect((await events(org.id)).map((e) => e.action).slice(-2)).to.deep.equal(['accounts.released', 'organization.deleted']);
      expect((await events(org.id)).at(-1)).to.deep.include({ action: 'organization.deleted', actor_id: admin.id });
      expect((await server.registry.db.query('SELECT 1 FROM account_managers WHERE account_id = $1', [worker.id])).rows).to.have.length(0);

      // The domain is free for another organization.
      const added = await api(stranger.token, 'POST', `/${stranger.org.id}/domains`, { domain });
      dns.txt.set(domain, [[added.body.domain.instructions.txtValue]]);
      expect((await api(stranger.token, 'POST', `/${stranger.org.id}/domains/${added.body.domain.id}/verify`)).status).to.equal(200);
    });

    it('asks for a recent sign-in before what cannot be undone: 401 insufficient_user_authentication with max_age (RFC 9470)', async () => {
      const { admin, org, token } = await adminWithOrg('Step Up');
      const domainId = await verifiedDomain(token, org.id, `stepup-${unique()}.test`);
      // Age the token's sign-in past the window (a token refreshed for hours, or a leaked one).
      await server.registry.db.query(
        `UPDATE oidc_payloads SET payload = jsonb_set(payload, '{extra,auth_time}', to_jsonb((payload->'extra'->>'auth_time')::bigint - 1200)) WHERE model = 'AccessToken' AND account_id = $1`,
        [admin.id],
      );
      const deleting = await api(token, 'DELETE', `/${org.id}`);
      expect(deleting.status).to.equal(401);
      expect(deleting.body).to.include({ error: 'insufficient_user_authentication', max_age: 600 });
      expect(deleting.body, 'one factor is the account’s level: no acr_values').not.to.have.property('acr_values');
      expect(deleting.headers.get('www-authenticate')).to.match(/^Bearer realm="lanyard", error="insufficient_user_authentication", .*max_age=600/);
      expect((await api(token, 'DELETE', `/${org.id}/domains/${domainId}?release=true`)).status, 'releasing too').to.equal(401);
      // What can be undone still works with the same token.
      expect((await api(token, 'PATCH', `/${org.id}`, { name: 'Stepped Up' })).status).to.equal(200);
      expect((await api(token, 'DELETE', `/${org.id}/domains/${domainId}`)).status, 'a domain that manages nobody').to.equal(200);
      expect((await api(token, 'GET', `/${org.id}`)).status).to.equal(200);
      // A new sign-in, and it goes through.
      const { token: fresh } = await tokenFor(admin.email, firstParty);
      expect((await api(fresh, 'DELETE', `/${org.id}`)).status).to.equal(200);
    });

    it('removes a domain whose only managed account was erased without asking for a release (nothing to tell anyone)', async () => {
      const { org, token } = await adminWithOrg('Leftovers');
      const domain = `left-${unique()}.test`;
      const domainId = await verifiedDomain(token, org.id, domain);
      const gone = await createAccount(server.registry, { email: `gone@${domain}` });
      // An erasure whose clean-up did not run: the account is erased, its manager row is still there.
      await server.registry.db.query('UPDATE accounts SET erased_at = now() WHERE id = $1', [gone.id]);
      expect((await api(token, 'GET', `/${org.id}`)).body.managedAccounts, 'the dashboard counts what the list shows').to.equal(0);
      const removed = await api(token, 'DELETE', `/${org.id}/domains/${domainId}`);
      expect(removed.status, removed.text).to.equal(200);
      expect(removed.body).to.deep.include({ released: 0 });
      expect((await server.registry.db.query('SELECT 1 FROM account_managers WHERE account_id = $1', [gone.id])).rows).to.have.length(0);
      expect((await events(org.id)).map((e) => e.action)).not.to.include('accounts.released');
    });

    it('removes a domain that manages accounts with release=true (200, how many released)', async () => {
      const { org, token } = await adminWithOrg('Shrinking');
      const domain = `shrink-${unique()}.test`;
      const domainId = await verifiedDomain(token, org.id, domain);
      await createAccount(server.registry, { email: `one@${domain}` });
      await createAccount(server.registry, { email: `two@${domain}` });
      // Created on a verified domain, both are managed from their first statement.
      expect((await api(token, 'GET', `/${org.id}/accounts`)).body.accounts).to.have.length(2);
      expect((await api(token, 'DELETE', `/${org.id}/domains/${domainId}`)).body.error).to.equal('domain.manages_accounts');
      const removed = await api(token, 'DELETE', `/${org.id}/domains/${domainId}?release=true`);
      expect(removed.status, removed.text).to.equal(200);
      expect(removed.body).to.deep.include({ released: 2 });
      expect(removed.body.domain).to.include({ id: domainId, domain });
      expect((await api(token, 'GET', `/${org.id}/accounts`)).body.accounts).to.deep.equal([]);
    });
  });

  describe('limits (attacker probe: invitation mail, Verify now, public suffixes)', () => {
    it('answers 429 with Retry-After once invitations to one address exceed the allowance, and queues no more mail', async () => {
      const { org, token } = await adminWithOrg();
      const victim = `victim-${unique()}@example.com`;
      const answers = [];
      for (let i = 0; i < 7; i++) answers.push(await api(token, 'POST', `/${org.id}/invitations`, { email: victim }));
      expect(answers.map((a) => a.status)).to.deep.equal([201, 201, 201, 201, 201, 201, 429]);
      const refused = answers[6]!;
      expect(refused.body.error).to.equal('invitation.throttled');
      expect(refused.headers.get('retry-after')).to.equal(String(refused.body.retry_after));
      expect(refused.body.retry_after).to.be.within(1, 900);
      const queued = await server.registry.db.query(`SELECT 1 FROM mail_outbox WHERE template = 'organization-invitation' AND recipient = $1`, [victim]);
      expect(queued.rows).to.have.length(6);
    });

    it('answers 429 with Retry-After once Verify now is asked too often for one domain', async () => {
      const { org, token } = await adminWithOrg();
      const added = await api(token, 'POST', `/${org.id}/domains`, { domain: `often-${unique()}.test` });
      const answers = [];
      for (let i = 0; i < 7; i++) answers.push(await api(token, 'POST', `/${org.id}/domains/${added.body.domain.id}/verify`));
      expect(answers.map((a) => a.status)).to.deep.equal([409, 409, 409, 409, 409, 409, 429]);
      expect(answers[6]!.body.error).to.equal('verification.throttled');
      expect(answers[6]!.headers.get('retry-after')).to.match(/^[1-9]\d*$/);
    });

    it('refuses a public suffix as a domain: 400 domain.public_suffix', async () => {
      const { org, token } = await adminWithOrg();
      for (const domain of ['co.uk', 'github.io', 'herokuapp.com']) {
        const res = await api(token, 'POST', `/${org.id}/domains`, { domain });
        expect([res.status, res.body.error], domain).to.deep.equal([400, 'domain.public_suffix']);
      }
    });
  });

  describe('bad input', () => {
    it('answers 400/413/415 with clear codes and the fields at fault, never a stack trace', async () => {
      const { org, token } = await adminWithOrg();
      const expectError = (res: Answer, status: number, code: string) => {
        expect(res.status, res.text).to.equal(status);
        expect(res.body.error).to.equal(code);
        expect(res.body.error_description).to.be.a('string');
        expect(res.body.request_id).to.be.a('string');
        expect(res.text).to.not.match(/at .*\.ts:\d+/);
      };
      expectError(await api(token, 'POST', `/${org.id}/domains`, {}), 400, 'request.invalid_body');
      const unknownMember = await api(token, 'POST', `/${org.id}/domains`, { domain: 'x.test', extra: 1 });
      expectError(unknownMember, 400, 'request.invalid_body');
      expect(unknownMember.body.fields).to.deep.equal(['extra']);
      const wrongType = await api(token, 'POST', `/${org.id}/domains`, { domain: ['a.test'] });
      expectError(wrongType, 400, 'request.invalid_body');
      expect(wrongType.body.fields).to.deep.equal(['domain']);
      expectError(await api(token, 'POST', `/${org.id}/domains`, '[1,2]'), 400, 'request.invalid_body');
      expectError(await api(token, 'POST', `/${org.id}/domains`, '{"domain": '), 400, 'request.invalid_body');
      expectError(await api(token, 'POST', `/${org.id}/domains`, { domain: 'a\u0000.test' }), 400, 'request.invalid_characters');
      expectError(await api(token, 'POST', `/${org.id}/domains`, 'domain=a.test', { 'Content-Type': 'application/x-www-form-urlencoded' }), 415, 'request.unsupported_media_type');
      expectError(await api(token, 'POST', `/${org.id}/domains`, { domain: 'a'.repeat(20_000) }), 413, 'request.too_large');
      expectError(await api(token, 'PATCH', `/${org.id}/accounts/acc_x`, {}), 400, 'request.invalid_body');
      expectError(await api(token, 'GET', `/${org.id}/accounts?limit=0`), 400, 'request.invalid_query');
      expectError(await api(token, 'GET', `/${org.id}/accounts?limit=1e2`), 400, 'request.invalid_query');
      expectError(await api(token, 'GET', `/${org.id}/accounts?status=gone`), 400, 'request.invalid_query');
      expectError(await api(token, 'GET', `/${org.id}/accounts?q=a&q=b`), 400, 'request.invalid_query');
      const typo = await api(token, 'GET', `/${org.id}/accounts?search=ada`);
      expectError(typo, 400, 'request.invalid_query');
      expect(typo.body.fields).to.deep.equal(['search']);
      expectError(await api(token, 'GET', `/${org.id}/audit?cursor=abc`), 400, 'request.invalid_query');
      expectError(await api(token, 'GET', `/${org.id}/nothing-here`), 404, 'request.not_found');
      const method = await api(token, 'PUT', `/${org.id}/domains`, { domain: 'a.test' });
      expectError(method, 405, 'request.method_not_allowed');
      expect(method.headers.get('allow')).to.contain('POST');
      expectError(await api(token, 'GET', `/${'x'.repeat(300)}`), 404, 'organization.not_found');
      // Only the organization's creation is in its log: nothing above changed anything.
      expect((await events(org.id)).map((e) => e.action)).to.deep.equal(['organization.created']);
    });
  });
});
