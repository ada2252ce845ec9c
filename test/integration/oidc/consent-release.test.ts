import { expect } from 'chai';
import supertest from 'supertest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { PageDriver } from '../../helpers/login-driver.ts';
import { signInToAccount, submit } from '../../helpers/account-pages.ts';
import { SCOPE_CLAIMS } from '../../../src/identity/claims-release.ts';
import { PROFILE_FIELDS, VISIBILITIES, type Visibility } from '../../../src/identity/profile.ts';

const KNOWN_CLAIMS = new Set<string>(Object.values(SCOPE_CLAIMS).flat());

/** The claims the consent page lists (`data-claim` on each detail). */
const listedClaims = (html: string) => new Set([...html.matchAll(/data-claim="([a-z_]+)"/g)].map((m) => m[1]!));

/**
 * Consent says what a client receives, and the client receives what consent said
 * (docs/decisions/0010-profile-visibility.md, "Revised"; docs/decisions/0021-consent-releases-what-it-lists.md).
 * Real relying parties on openid-client, the real login and consent pages, every visibility.
 */
describe('consent and released claims (consent page, ID token, userinfo, /api/profiles/:id)', () => {
  let server: TestServer;
  before(async () => {
    await resetDatabase();
    server = await startTestServer();
  });
  after(async () => server.close());

  /** An account with every profile field filled in and every field at `visibility`. */
  async function accountWith(visibility: Visibility) {
    const account = await createAccount(server.registry, { name: 'Grace Hopper' });
    const { agent } = await signInToAccount(server.url, account.email);
    const fields: Record<string, string> = {
      name: 'Grace Hopper', nickname: 'amazing grace', job_title: 'Rear Admiral', department: 'Programming',
      organization_name: 'US Navy', location: 'Arlington', zoneinfo: 'America/New_York',
    };
    for (const field of PROFILE_FIELDS) fields[`visibility[${field}]`] = visibility;
    const saved = await submit(agent, '/account/profile', '/account/profile', fields);
    expect(saved.status, saved.text.slice(0, 300)).to.equal(303); // saved, then back to the page (Post/Redirect/Get)
    return (await server.registry.accounts.findById(account.id))!;
  }

  async function authorize(email: string, client: { clientId: string; clientSecret?: string | undefined; redirectUri: string }, scope: string) {
    const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: client.redirectUri, scope, nonce, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const driver = new PageDriver(server.url);
    const tokens = await oidc.authorizationCodeGrant(config, await driver.authorize(url.href, { email, password: PASSWORD }), { pkceCodeVerifier: verifier, expectedNonce: nonce });
    const idToken = tokens.claims()!;
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, idToken.sub);
    return { driver, tokens, idToken, userinfo };
  }

  /** The person's claims in the ID token and userinfo (protocol claims like iss and exp left out). */
  const personClaims = (idToken: Record<string, unknown>, userinfo: Record<string, unknown>) =>
    new Set([...Object.keys(idToken), ...Object.keys(userinfo)].filter((claim) => KNOWN_CLAIMS.has(claim)));

  for (const visibility of VISIBILITIES) {
    it(`gives a third-party client exactly what its consent page listed, with every field "${visibility}"`, async () => {
      const account = await accountWith(visibility);
      const client = await createClient(server.registry, { firstParty: false, name: 'Board Exporter' });
      const { driver, tokens, idToken, userinfo } = await authorize(account.email, client, 'openid profile email');

      expect(driver.seen).to.include('consent');
      const page = driver.consentPage!;
      expect(page).to.contain('See your email address');
      expect(page).to.contain(account.email);
      for (const value of ['Grace Hopper', 'amazing grace', 'Rear Admiral', 'Programming', 'US Navy', 'Arlington', 'America/New_York']) expect(page).to.contain(value);
      expect(tokens.scope?.split(' ')).to.have.members(['openid', 'profile', 'email']);

      // What was listed is what arrived, in the ID token and at userinfo alike.
      expect(idToken).to.include({ email: account.email, email_verified: true, name: 'Grace Hopper', job_title: 'Rear Admiral' });
      expect(userinfo).to.include({ email: account.email, email_verified: true, name: 'Grace Hopper', organization: 'US Navy', location: 'Arlington' });
      expect([...personClaims(idToken, userinfo)].sort()).to.deep.equal([...listedClaims(page)].sort());
      const released = await server.registry.claimsRelease.forClient(account, client.clientId, { scopes: ['openid', 'profile', 'email'] });
      expect(userinfo).to.deep.equal({ sub: account.id, ...released.claims });

      // Visibility still governs what other people see.
      const stranger = await supertest(server.url).get(`/api/profiles/${account.id}`).accept('json');
      expect(stranger.status).to.equal(200);
      if (visibility === 'anyone') expect(stranger.body).to.include({ email: account.email, job_title: 'Rear Admiral', name: 'Grace Hopper' });
      else expect(stranger.body).to.deep.equal({ id: account.id });
    });

    it(`gives a first-party product what the same function releases, with every field "${visibility}"`, async () => {
      const account = await accountWith(visibility);
      const client = await createClient(server.registry, { firstParty: true, name: 'Jira' });
      const { driver, idToken, userinfo } = await authorize(account.email, client, 'openid profile email');
      expect(driver.seen, 'no consent page for our own web products').not.to.include('consent');
      const released = await server.registry.claimsRelease.forClient(account, client.clientId, { scopes: ['openid', 'profile', 'email'] });
      expect(userinfo).to.deep.equal({ sub: account.id, ...released.claims });
      expect(idToken).to.include({ email: account.email, name: 'Grace Hopper' });
      // The list a consent page would show (a native first-party app sees it) is what arrived.
      expect([...personClaims(idToken, userinfo)].sort()).to.deep.equal(released.items.flatMap((item) => item.details.map((d) => d.claim)).sort());
    });
  }

  it('lists and releases only what the scopes ask: email alone is the address, nothing of the profile', async () => {
    const account = await accountWith('private');
    const client = await createClient(server.registry, { firstParty: false, name: 'Mailer' });
    const { driver, idToken, userinfo } = await authorize(account.email, client, 'openid email');
    const page = driver.consentPage!;
    expect(page).to.contain(account.email);
    expect(page).not.to.contain('Rear Admiral');
    expect([...listedClaims(page)].sort()).to.deep.equal(['amr', 'email', 'email_verified', 'sub']);
    expect(userinfo).to.deep.equal({ sub: account.id, email: account.email, email_verified: true });
    expect(idToken).not.to.have.any.keys('name', 'job_title', 'picture');
  });

  it('leaves out of the page and the tokens a field that has no value', async () => {
    const account = await createAccount(server.registry, { name: 'Ada Lovelace' });
    const client = await createClient(server.registry, { firstParty: false, name: 'Exporter' });
    const { driver, userinfo } = await authorize(account.email, client, 'openid profile');
    const listed = listedClaims(driver.consentPage!);
    expect(listed.has('job_title')).to.equal(false);
    expect(userinfo).not.to.have.property('job_title');
    expect(listed.has('name')).to.equal(true);
    expect(userinfo).to.include({ name: 'Ada Lovelace' });
  });
});
