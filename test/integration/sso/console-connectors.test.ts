import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount } from '../../helpers/factories.ts';
import { postForm, signInToAccount, type Agent } from '../../helpers/account-pages.ts';
import { startUpstreamIdp } from '../../helpers/upstream-idp.ts';
import { startSamlIdp, type SamlIdp } from '../../helpers/saml-idp.ts';
import { ssoPolicy, verifiedDomain } from '../../helpers/sso.ts';

/**
 * The console's identity provider pages (docs/flows/sso.md, "Console") as a browser without
 * JavaScript uses them: registering an OIDC connector against a real upstream, linking a domain,
 * "Test connection" (a real login upstream, nothing signed in), the health line; a SAML connector
 * from pasted IdP metadata; and what a non-admin gets.
 */
describe('SSO: the console’s identity provider pages', () => {
  let server: TestServer;
  let upstream: Awaited<ReturnType<typeof startUpstreamIdp>>;
  let samlIdp: SamlIdp;
  let admin: { agent: Agent; id: string };
  let base: string;
  let domainId: string;

  before(async () => {
    samlIdp = await startSamlIdp();
  });
  after(async () => samlIdp.close());

  beforeEach(async () => {
    await resetDatabase();
    upstream = await startUpstreamIdp({ clientId: 'lanyard-console' });
    server = await startTestServer();
    const account = await createAccount(server.registry, { email: 'boss@admins.example' });
    const created = await server.registry.organizations.service.create(account.id, 'Acme');
    if (!created.ok) throw new Error(created.problem);
    domainId = await verifiedDomain(server.registry, account.id, created.organization.id, 'acme.test');
    base = `/admin/organizations/${created.organization.id}`;
    admin = { agent: (await signInToAccount(server.url, 'boss@admins.example')).agent, id: account.id };
  });
  afterEach(async () => {
    await server.close();
    await upstream.close();
  });

  async function registerOidc(fields: Record<string, string> = {}) {
    return postForm(admin.agent, `${base}/connectors/new?kind=oidc`, `${base}/connectors`, {
      kind: 'oidc', name: 'Acme Okta', issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret, scopes: 'openid email profile', ...fields,
    });
  }

  it('registers an OIDC connector, links a domain, and tests the connection without signing anybody in', async () => {
    const list = await admin.agent.get(`${base}/connectors`);
    expect(list.status).to.equal(200);
    expect(list.text).to.contain('No identity provider yet.');

    const created = await registerOidc();
    expect(created.status).to.equal(303);
    const path = created.headers.location!;
    const connectorId = /connectors\/(con_[^/?#]+)/.exec(path)![1]!;
    upstream.configure(`${server.url}/login/sso/${connectorId}/callback`);
    const page = await admin.agent.get(path);
    expect(page.text).to.contain('Registered.');
    expect(page.text).to.contain(`${server.url}/login/sso/${connectorId}/callback`);
    expect(page.text, 'the secret is never shown').to.not.contain(upstream.clientSecret);
    expect(page.text).to.contain('No sign-in through it yet.');
    // Stored sealed, never in the clear.
    const row = (await server.registry.db.query<{ sealed_secrets: string; config: Record<string, unknown> }>('SELECT sealed_secrets, config FROM connectors WHERE id = $1', [connectorId])).rows[0]!;
    expect(row.sealed_secrets).to.not.contain(upstream.clientSecret);
    expect(row.config).to.deep.equal({ issuer: upstream.issuer, clientId: upstream.clientId, scopes: 'openid email profile' });

    const linked = await postForm(admin.agent, path, `${path}/domains`, { domain: domainId });
    expect(linked.status).to.equal(303);
    expect((await admin.agent.get(path)).text).to.match(/value="[^"]+" checked> acme\.test/);

    // Test connection: the admin's browser goes upstream and comes back to the console.
    upstream.signInAs({ sub: 'up-tester', email: 'tester@acme.test', email_verified: true, name: 'Tess Ter' });
    const started = await postForm(admin.agent, path, `${path}/test`);
    expect(started.status).to.equal(303);
    expect(upstream.requests.length).to.equal(0);
    const upstreamAgent = supertest.agent(upstream.issuer);
    let location = started.headers.location!;
    let result: supertest.Response | undefined;
    for (let i = 0; i < 10 && !result; i += 1) {
      const url = new URL(location, server.url);
      const res = await (url.origin === server.url ? admin.agent : upstreamAgent).get(url.pathname + url.search);
      if ([302, 303].includes(res.status)) location = new URL(res.headers.location!, url).href;
      else result = res;
    }
    expect(upstream.requests.at(-1)!.get('max_age'), 'a test asks for a fresh sign-in').to.equal('0');
    expect(result!.status).to.equal(200);
    expect(result!.text).to.contain('its answer was accepted');
    expect(result!.text).to.contain('tester@acme.test');
    expect(result!.text).to.contain('Tess Ter');
    expect(await server.registry.accounts.findByEmail('tester@acme.test'), 'nobody created').to.equal(undefined);
    expect(await server.registry.accountIdentities.findIdentity(connectorId, 'up-tester')).to.equal(undefined);
    expect((await admin.agent.get(path)).text).to.match(/data-health="working"/);

    // The audit trail has the registration and the domain.
    const audit = await admin.agent.get(`${base}/audit`);
    expect(audit.text).to.contain('registered the identity provider');
    expect(audit.text).to.contain('changed the domains of the identity provider');
  });

  it('shows an unreachable upstream on the page and the health line', async () => {
    const created = await registerOidc({ issuer: 'http://127.0.0.1:1' });
    const path = created.headers.location!;
    const tested = await postForm(admin.agent, path, `${path}/test`);
    expect(tested.status).to.equal(502);
    expect(tested.text).to.contain('The identity provider can’t be reached');
    const page = await admin.agent.get(path);
    expect(page.text).to.match(/data-health="failing"/);
    expect(page.text).to.contain('upstream unreachable');
  });

  it('refuses invalid settings with a page that says what is wrong, keeping what was typed', async () => {
    const bad = await registerOidc({ issuer: 'ftp://idp.acme.test', name: 'Typed name' });
    expect(bad.status).to.equal(400);
    expect(bad.text).to.contain('Check the settings');
    expect(bad.text).to.contain('Issuer URL: an https URL');
    expect(bad.text).to.contain('value="Typed name"');
    // The field's label and what to do, never the validator's own words.
    const noClient = await registerOidc({ clientId: '' });
    expect(noClient.status).to.equal(400);
    expect(noClient.text).to.contain('Client ID: enter a value');
    expect(noClient.text).not.to.contain('Too small');
    const noSecret = await registerOidc({ clientSecret: '' });
    expect(noSecret.status).to.equal(400);
    expect(noSecret.text).to.contain('Enter the client secret');
    await registerOidc();
    const twice = await registerOidc();
    expect(twice.status).to.equal(409);
    expect(twice.text).to.contain('That name is taken');
  });

  it('registers a SAML connector from pasted IdP metadata and publishes the SP metadata', async () => {
    const created = await postForm(admin.agent, `${base}/connectors/new?kind=saml`, `${base}/connectors`, { kind: 'saml', name: 'Acme ADFS', metadata: samlIdp.metadata(), nameAttribute: 'displayName' });
    expect(created.status).to.equal(303);
    const path = created.headers.location!;
    const connectorId = /connectors\/(con_[^/?#]+)/.exec(path)![1]!;
    const page = await admin.agent.get(path);
    expect(page.text).to.contain(`${server.url}/saml/${connectorId}/acs`);
    const row = (await server.registry.db.query<{ config: { idpEntityId: string; ssoUrl: string; idpCertificates: string[] } }>('SELECT config FROM connectors WHERE id = $1', [connectorId])).rows[0]!;
    expect(row.config.idpEntityId).to.equal(`${new URL(samlIdp.metadata().match(/Location="([^"]+)"/)![1]!).origin}/idp`);
    expect(row.config.idpCertificates).to.have.length(1);
    const metadata = await supertest(server.url).get(`/saml/${connectorId}/metadata`);
    expect(metadata.status).to.equal(200);
    expect(metadata.text).to.contain(`entityID="${server.url}/saml/${connectorId}/metadata"`);
    // Test connection through the IdP: its answer comes back by the ACS and is shown, nobody signed in.
    samlIdp.trustSp(metadata.text);
    samlIdp.signInAs({ nameId: 'sam@acme.test', attributes: { displayName: 'Sam Saml' } });
    const started = await postForm(admin.agent, path, `${path}/test`);
    expect(started.status).to.equal(303);
    const answered = await samlIdp.follow(started.headers.location!);
    expect(answered.status).to.equal(200);
    const form = { SAMLResponse: answered.SAMLResponse!, ...(answered.RelayState ? { RelayState: answered.RelayState } : {}) };
    const continued = await admin.agent.post(`/saml/${connectorId}/acs/continue`).type('form').send(form);
    expect(continued.status).to.equal(303);
    const shown = await admin.agent.get(continued.headers.location!);
    expect(shown.status).to.equal(200);
    expect(shown.text).to.contain('its answer was accepted');
    expect(shown.text).to.contain('sam@acme.test');
    expect(shown.text).to.contain('Sam Saml');
    expect(shown.text, 'no domain linked yet').to.contain('would be refused');
    expect(await server.registry.accounts.findByEmail('sam@acme.test')).to.equal(undefined);

    const badXml = await postForm(admin.agent, `${base}/connectors/new?kind=saml`, `${base}/connectors`, { kind: 'saml', name: 'Broken', metadata: '<nope/>' });
    expect(badXml.status).to.equal(400);
    expect(badXml.text).to.contain('We couldn’t read that metadata');
  });

  it('does not turn off a connector a policy requires', async () => {
    const created = await registerOidc();
    const path = created.headers.location!;
    const connectorId = /connectors\/(con_[^/?#]+)/.exec(path)![1]!;
    const orgId = base.split('/').at(-1)!;
    await ssoPolicy(server.registry, orgId, connectorId, { isDefault: true });
    const off = await postForm(admin.agent, path, path, { name: 'Acme Okta', issuer: upstream.issuer, clientId: upstream.clientId, scopes: 'openid email' });
    expect(off.status).to.equal(409);
    expect(off.text).to.contain('required by a policy');
    const renamed = await postForm(admin.agent, path, path, { name: 'Acme Okta 2', issuer: upstream.issuer, clientId: upstream.clientId, scopes: 'openid email', enabled: 'on' });
    expect(renamed.status).to.equal(303);
    expect((await admin.agent.get(path)).text).to.contain('Acme Okta 2');
  });

  it('answers a non-admin with the site’s 404, for pages and actions alike', async () => {
    const created = await registerOidc();
    const path = created.headers.location!;
    await createAccount(server.registry, { email: 'someone@admins.example' });
    const other = (await signInToAccount(server.url, 'someone@admins.example')).agent;
    expect((await other.get(`${base}/connectors`)).status).to.equal(404);
    expect((await other.get(path)).status).to.equal(404);
    // Their own console page's form token: the action itself is what is refused.
    expect((await postForm(other, '/admin', `${path}/test`)).status).to.equal(404);
    expect((await postForm(other, '/admin', `${base}/connectors`, { kind: 'oidc', name: 'Mine', issuer: upstream.issuer, clientId: 'x', clientSecret: 'y' })).status).to.equal(404);
    expect((await server.registry.db.query('SELECT id FROM connectors')).rows).to.have.length(1);
  });
});
