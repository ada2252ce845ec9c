import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { resetDatabase } from '../helpers/db.ts';
import { createAccount, PASSWORD } from '../helpers/factories.ts';
import { launchChromium } from '../helpers/browser.ts';
import { startUpstreamIdp } from '../helpers/upstream-idp.ts';
import { ssoOrganization, ssoPolicy, verifiedDomain } from '../helpers/sso.ts';
import { startSamlIdp } from '../helpers/saml-idp.ts';
import { parseIdpMetadata } from '../../src/federation/saml/idp-metadata.ts';

/**
 * Company SSO in real Chromium (docs/flows/sso.md): an address on the company's domain typed at
 * the identifier step goes to the company's identity provider (a second oidc-provider, named
 * `localhost` so the two servers' cookies stay apart) and comes back signed in; and an admin
 * registers, links and tests an identity provider through the console's pages.
 */
describe('browser: company SSO', function () {
  this.timeout(60_000);
  let browser: Browser;
  let server: TestServer;
  let upstream: Awaited<ReturnType<typeof startUpstreamIdp>>;
  let context: BrowserContext;

  before(async () => {
    browser = await launchChromium();
  });
  after(async () => browser?.close());
  beforeEach(async () => {
    await resetDatabase();
    upstream = await startUpstreamIdp({ host: 'localhost', clientId: 'lanyard-browser' });
    server = await startTestServer();
    context = await browser.newContext();
  });
  afterEach(async () => {
    await context.close();
    await server.close();
    await upstream.close();
  });

  it('sends an address on the company domain to its identity provider and back, signed in', async () => {
    const sso = await ssoOrganization(server.registry, { domain: 'acme.test', upstream });
    upstream.configure(`${server.url}/login/sso/${sso.connectorId}/callback`);
    upstream.signInAs({ sub: 'up-ada', email: 'ada@acme.test', email_verified: true, name: 'Ada Lovelace' });
    const page = await context.newPage();
    const visited: string[] = [];
    page.on('request', (request) => { if (request.isNavigationRequest()) visited.push(request.url()); });

    await page.goto(`${server.url}/account`);
    await page.getByLabel('Email').fill('ada@acme.test');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${server.url}/account`);

    // The browser went through the upstream's authorization endpoint, and never saw a password page.
    expect(visited.some((url) => url.startsWith(`${upstream.issuer}/auth?`))).to.equal(true);
    expect(visited.some((url) => url.startsWith(`${server.url}/login/sso/${sso.connectorId}/callback?`))).to.equal(true);
    expect(visited.some((url) => /\/interaction\/[^/]+\/password/.test(url))).to.equal(false);
    expect(upstream.requests.at(-1)?.get('login_hint')).to.equal('ada@acme.test');
    expect(await page.getByLabel('Password').count()).to.equal(0);
    expect(await page.locator('body').textContent()).to.contain('ada@acme.test');
    const account = await server.registry.accounts.findByEmail('ada@acme.test');
    expect(account?.name).to.equal('Ada Lovelace');
  });

  it('asks an admin’s own password before the company’s sign-in is linked to their account, then signs them in (decision 0086)', async () => {
    const sso = await ssoOrganization(server.registry, { domain: 'acme.test', upstream });
    upstream.configure(`${server.url}/login/sso/${sso.connectorId}/callback`);
    const admin = await createAccount(server.registry, { email: 'ada@acme.test' });
    await server.registry.db.query("INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'admin', now())", [sso.org.id, admin.id]);
    upstream.signInAs({ sub: 'up-ada', email: 'ada@acme.test', email_verified: true });
    const page = await context.newPage();
    await page.goto(`${server.url}/account`);
    await page.getByLabel('Email').fill('ada@acme.test');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Confirm it’s you' }).waitFor();
    expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-ada'), 'nothing linked on the upstream’s word').to.equal(undefined);
    // A reload shows the page again (a GET of its own); a wrong password is refused on it.
    await page.reload();
    await page.getByLabel('Password of ada@acme.test').fill('not the password');
    await page.getByRole('button', { name: /Confirm and continue/ }).click();
    await page.getByText('Check your email and password').waitFor();
    await page.getByLabel('Password of ada@acme.test').fill(PASSWORD);
    await page.getByRole('button', { name: /Confirm and continue/ }).click();
    await page.waitForURL(`${server.url}/account`);
    expect(await server.registry.accountIdentities.findIdentity(sso.connectorId, 'up-ada')).to.deep.equal({ account_id: admin.id });
  });

  it('signs in through a SAML IdP on another site: its cross-site post is carried on by the interim page', async () => {
    const idp = await startSamlIdp({ host: 'localhost' });
    try {
      const admin = await createAccount(server.registry, { email: 'boss@admins.example' });
      const created = await server.registry.organizations.service.create(admin.id, 'Acme');
      if (!created.ok) throw new Error(created.problem);
      const orgId = created.organization.id;
      const domainId = await verifiedDomain(server.registry, admin.id, orgId, 'acme.test');
      const connector = await server.registry.sso.connectors.create(admin.id, orgId, 'saml', { name: 'Acme SAML', config: { ...parseIdpMetadata(idp.metadata()), idpInitiated: false } });
      if (!connector.ok) throw new Error(connector.problem);
      await server.registry.sso.connectors.setDomains(admin.id, orgId, connector.connector.id, [domainId]);
      await ssoPolicy(server.registry, orgId, connector.connector.id, { isDefault: true });
      idp.trustSp(await (await fetch(`${server.url}/saml/${connector.connector.id}/metadata`)).text());
      idp.signInAs({ nameId: 'grace@acme.test' });

      const page = await context.newPage();
      const posted: string[] = [];
      page.on('request', (request) => { if (request.method() === 'POST') posted.push(new URL(request.url()).pathname); });
      await page.goto(`${server.url}/account`);
      await page.getByLabel('Email').fill('grace@acme.test');
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.waitForURL(`${server.url}/account`);
      expect(posted).to.include.members([`/saml/${connector.connector.id}/acs`, `/saml/${connector.connector.id}/acs/continue`]);
      expect(await page.locator('body').textContent()).to.contain('grace@acme.test');
    } finally {
      await idp.close();
    }
  });

  it('lets an admin register, link and test an identity provider in the console', async () => {
    const admin = await createAccount(server.registry, { email: 'boss@admins.example' });
    const created = await server.registry.organizations.service.create(admin.id, 'Acme');
    if (!created.ok) throw new Error(created.problem);
    await verifiedDomain(server.registry, admin.id, created.organization.id, 'acme.test');
    const page = await context.newPage();
    await page.goto(`${server.url}/account`);
    await page.getByLabel('Email').fill(admin.email);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${server.url}/account`);

    await page.goto(`${server.url}/admin/organizations/${created.organization.id}`);
    await page.getByRole('link', { name: 'Identity providers' }).click();
    await page.getByRole('link', { name: 'OpenID Connect' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Acme Okta');
    await page.getByLabel('Issuer').fill(upstream.issuer);
    await page.getByLabel('Client ID').fill(upstream.clientId);
    await page.getByLabel('Client secret').fill(upstream.clientSecret);
    await page.getByRole('button', { name: 'Register' }).click();
    expect(await page.getByRole('status').first().textContent()).to.contain('Registered.');

    // The redirect URI shown is the one the upstream's admin registers.
    const redirectUri = await page.getByLabel('Redirect URI to register').inputValue();
    expect(redirectUri).to.match(new RegExp(`^${server.url}/login/sso/con_[^/]+/callback$`));
    upstream.configure(redirectUri);

    await page.getByLabel(/acme\.test/).check();
    await page.getByRole('button', { name: 'Save domains' }).click();
    expect(await page.getByRole('status').first().textContent()).to.contain('Domains saved.');
    expect(await page.getByLabel(/acme\.test/).isChecked()).to.equal(true);

    upstream.signInAs({ sub: 'up-tess', email: 'tess@acme.test', email_verified: true, name: 'Tess Ter' });
    await page.getByRole('button', { name: 'Test connection' }).click();
    await page.waitForURL(/\/test\/callback/);
    expect(await page.locator('#test-result').textContent()).to.contain('its answer was accepted');
    expect(await page.locator('#test-claims').textContent()).to.contain('tess@acme.test');
    expect(await server.registry.accounts.findByEmail('tess@acme.test')).to.equal(undefined);

    await page.getByRole('link', { name: 'Back to Acme Okta' }).click();
    expect(await page.locator('#health .health').getAttribute('data-health')).to.equal('working');
  });
});
