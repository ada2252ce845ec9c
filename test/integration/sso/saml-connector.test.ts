import { expect } from 'chai';
import supertest from 'supertest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { startSamlIdp, type SamlIdp } from '../../helpers/saml-idp.ts';
import { ssoPolicy, verifiedDomain } from '../../helpers/sso.ts';
import { parseIdpMetadata } from '../../../src/federation/saml/idp-metadata.ts';

type Agent = ReturnType<typeof supertest.agent>;

/**
 * A company's SAML 2.0 connector through Lanyard's real pages (docs/flows/sso.md): the
 * identifier step sends the address to the IdP (a samlify IdP over HTTP started by the test,
 * which verifies our signed AuthnRequest), the IdP's page posts the Response to our ACS, the
 * interim page posts it on to our own origin, and the login finishes at the relying party. The
 * service provider's own checks are test/integration/federation/saml-service-provider.test.ts's.
 */
describe('SSO: a SAML 2.0 connector', () => {
  let idp: SamlIdp;
  let server: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;
  let rp: oidc.Configuration;
  let connectorId: string;
  let orgId: string;

  before(async () => {
    idp = await startSamlIdp();
  });
  after(async () => idp.close());

  beforeEach(async () => {
    await resetDatabase();
    server = await startTestServer();
    const admin = await createAccount(server.registry, { email: 'admin@admins.example' });
    const created = await server.registry.organizations.service.create(admin.id, 'Acme');
    if (!created.ok) throw new Error(created.problem);
    orgId = created.organization.id;
    const domainId = await verifiedDomain(server.registry, admin.id, orgId, 'acme.test');
    const connector = await server.registry.sso.connectors.create(admin.id, orgId, 'saml', { name: 'Acme SAML', config: { ...parseIdpMetadata(idp.metadata()), idpInitiated: false, nameAttribute: 'displayName' } });
    if (!connector.ok) throw new Error(`${connector.problem} ${connector.detail}`);
    connectorId = connector.connector.id;
    await server.registry.sso.connectors.setDomains(admin.id, orgId, connectorId, [domainId]);
    await ssoPolicy(server.registry, orgId, connectorId, { isDefault: true });
    // The IdP's admin imports our SP metadata from its stable URL.
    const metadata = await supertest(server.url).get(`/saml/${connectorId}/metadata`);
    expect(metadata.status).to.equal(200);
    expect(metadata.type).to.equal('application/samlmetadata+xml');
    idp.trustSp(metadata.text);
    client = await createClient(server.registry, { firstParty: true, name: 'Confluence' });
    rp = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  afterEach(async () => server.close());

  async function login(email: string, options: { tamper?: (form: { SAMLResponse: string; RelayState?: string }) => void; agent?: Agent; extra?: Record<string, string> } = {}) {
    const lanyard = options.agent ?? supertest.agent(server.url);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(rp, { redirect_uri: client.redirectUri, scope: 'openid email', state, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...options.extra });
    const first = await lanyard.get(url.pathname + url.search);
    const uid = /\/interaction\/([^/?#]+)/.exec(first.headers.location!)![1]!;
    const page = await lanyard.get(`/interaction/${uid}`);
    const identified = await lanyard.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(page.text), email });
    expect(identified.headers.location).to.equal(`/interaction/${uid}/sso/${connectorId}?login_hint=${encodeURIComponent(email)}`);
    const started = await lanyard.get(identified.headers.location!);
    expect(started.status).to.equal(303);
    const answered = await idp.follow(started.headers.location!);
    expect(answered.status, 'the IdP verified our signed AuthnRequest').to.equal(200);
    expect(answered.action).to.equal(`${server.url}/saml/${connectorId}/acs`);
    const form = { SAMLResponse: answered.SAMLResponse!, ...(answered.RelayState ? { RelayState: answered.RelayState } : {}) };
    options.tamper?.(form);
    // The IdP's page posts cross-site: our interim page posts the same fields on to our origin.
    const interim = await supertest(server.url).post(`/saml/${connectorId}/acs`).type('form').send(form);
    expect(interim.status).to.equal(200);
    expect(interim.text).to.contain(`action="/saml/${connectorId}/acs/continue"`);
    expect(interim.text).to.contain('src="/static/sso-continue.js"');
    const continued = await lanyard.post(`/saml/${connectorId}/acs/continue`).type('form').send(form);
    if (continued.status !== 303) return { page: continued, lanyard };
    let location = continued.headers.location!;
    for (let i = 0; i < 10; i += 1) {
      const next = new URL(location, server.url);
      if (next.origin === new URL(client.redirectUri).origin) {
        return { tokens: await oidc.authorizationCodeGrant(rp, next, { pkceCodeVerifier: verifier, expectedState: state }), lanyard };
      }
      const res = await lanyard.get(next.pathname + next.search);
      if (![302, 303].includes(res.status)) return { page: res, lanyard };
      location = res.headers.location!;
    }
    throw new Error('too many redirects');
  }

  it('signs in through the IdP and creates the account just in time', async () => {
    idp.signInAs({ nameId: 'ada@acme.test', attributes: { displayName: 'Ada Lovelace' } });
    const result = await login('ada@acme.test');
    const claims = result.tokens!.claims()!;
    expect(claims.amr).to.include.members(['fed', `sso:${connectorId}`]);
    const account = await server.registry.accounts.findByEmail('ada@acme.test');
    expect(account).to.include({ name: 'Ada Lovelace', email_verified: true, password_hash: null });
    expect(claims.sub).to.equal(account!.id);
    expect(await server.registry.accountIdentities.findIdentity(connectorId, 'ada@acme.test')).to.deep.equal({ account_id: account!.id });
  });

  it('refuses a tampered response with a clear page, and shows it on the health line', async () => {
    idp.signInAs({ nameId: 'mallory@acme.test' });
    const result = await login('mallory@acme.test', {
      tamper: (form) => {
        const xml = Buffer.from(form.SAMLResponse, 'base64').toString('utf8').replace('mallory@acme.test', 'admin@acme.test');
        form.SAMLResponse = Buffer.from(xml, 'utf8').toString('base64');
      },
    });
    expect(result.page?.status).to.equal(400);
    expect(result.page?.text).to.contain('Your company’s sign-in didn’t complete');
    expect(await server.registry.accounts.findByEmail('admin@acme.test')).to.equal(undefined);
    const row = (await server.registry.db.query<{ last_failure: string | null }>('SELECT last_failure FROM connectors WHERE id = $1', [connectorId])).rows[0]!;
    expect(row.last_failure).to.match(/^response refused: sso\.saml_invalid/);
  });

  it('refuses a response posted by a browser that did not start the login', async () => {
    idp.signInAs({ nameId: 'grace@acme.test' });
    const lanyard = supertest.agent(server.url);
    const first = await login('grace@acme.test', { agent: lanyard });
    expect(first.tokens).to.not.equal(undefined);
    // Another browser posting a response: no login of its own waits for it.
    const stranger = await supertest(server.url).post(`/saml/${connectorId}/acs/continue`).type('form').send({ SAMLResponse: await idp.respond({ inResponseTo: null }) });
    expect(stranger.status).to.equal(400);
    expect(stranger.text).to.contain('Start from the login page');
  });

  it('refuses an address outside the connector’s linked domains', async () => {
    idp.signInAs({ nameId: 'eve@elsewhere.test' });
    const result = await login('eve@acme.test');
    expect(result.page?.status).to.equal(403);
    expect(result.page?.text).to.contain('This address can’t sign in here');
  });

  it('asks the IdP for a fresh sign-in (ForceAuthn) when re-authenticating', async () => {
    idp.signInAs({ nameId: 'fresh@acme.test' });
    const lanyard = supertest.agent(server.url);
    expect((await login('fresh@acme.test', { agent: lanyard })).tokens).to.not.equal(undefined);
    const again = await login('fresh@acme.test', { agent: lanyard, extra: { prompt: 'login' } });
    expect(idp.requests.at(-1)?.forceAuthn).to.equal(true);
    expect(again.tokens).to.not.equal(undefined);
  });

  it('asks the IdP for a fresh sign-in (ForceAuthn) for a relying party’s max_age, which SAML cannot carry', async () => {
    idp.signInAs({ nameId: 'aged@acme.test' });
    expect((await login('aged@acme.test')).tokens).to.not.equal(undefined);
    expect(idp.requests.at(-1)?.forceAuthn, 'no max_age: the IdP’s session may answer').to.equal(false);
    const aged = await login('aged@acme.test', { extra: { max_age: '600' } });
    expect(idp.requests.at(-1)?.forceAuthn).to.equal(true);
    expect(aged.tokens).to.not.equal(undefined);
  });

  it('serves the SP metadata of SAML connectors only', async () => {
    expect((await supertest(server.url).get('/saml/con_nope/metadata')).status).to.equal(404);
  });
});
