import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient } from '../../helpers/factories.ts';
import { startInteraction } from '../../helpers/authorization.ts';
import { startUpstreamIdp } from '../../helpers/upstream-idp.ts';
import { ssoOrganization } from '../../helpers/sso.ts';

/**
 * "Continue with Google" for an account whose organization requires its own identity provider
 * (issue 13: every path proven against an SSO-required account). Google proves the address, but
 * the policy names another way in: the completion service sends the browser to the company's
 * connector instead of finishing the login.
 */
describe('SSO: Google login of an account that must use its company sign-in', () => {
  let google: Awaited<ReturnType<typeof startUpstreamIdp>>;
  let server: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;

  beforeEach(async () => {
    await resetDatabase();
    google = await startUpstreamIdp();
    server = await startTestServer({ overrides: { google: { issuer: google.issuer, clientId: google.clientId, clientSecret: google.clientSecret } } });
    google.configure(`${server.url}/login/google/callback`);
    client = await createClient(server.registry, { firstParty: true, name: 'Jira' });
  });
  afterEach(async () => {
    await server?.close();
    await google?.close();
  });

  /** Clicks "Continue with Google" and follows redirects until one leaves for `stopAt`, a page is shown, or the client is reached. */
  async function googleLogin(sub: string, email: string, stopAt: RegExp) {
    google.signInAs({ sub, email, email_verified: true });
    const lanyard = supertest.agent(server.url);
    const upstream = supertest.agent(google.issuer);
    const uid = await startInteraction(lanyard, client);
    let location = `${server.url}/interaction/${uid}/google`;
    for (let i = 0; i < 20; i += 1) {
      const url = new URL(location);
      if (stopAt.test(url.pathname)) return { uid, stoppedAt: url };
      if (url.origin === new URL(client.redirectUri).origin) return { uid, callback: url };
      const res = await (url.origin === server.url ? lanyard : upstream).get(url.pathname + url.search);
      if (![302, 303].includes(res.status)) return { uid, page: res };
      location = new URL(res.headers.location!, url).href;
    }
    throw new Error('too many redirects');
  }

  it('sends the person to the company connector instead of signing them in', async () => {
    const sso = await ssoOrganization(server.registry, { domain: 'acme.test' });
    const account = await createAccount(server.registry, { email: 'grace@acme.test' });
    const result = await googleLogin('g-grace', 'grace@acme.test', /\/sso\//);
    expect(result.callback, 'never reaches the relying party').to.equal(undefined);
    expect(result.stoppedAt?.pathname).to.equal(`/interaction/${result.uid}/sso/${sso.connectorId}`);
    const sessions = await server.registry.db.query("SELECT 1 FROM security_events WHERE account_id = $1 AND type = 'login.succeeded'", [account.id]);
    expect(sessions.rows, 'no login recorded').to.deep.equal([]);
  });

  it('signs in as before once the organization has no SSO policy (control)', async () => {
    await ssoOrganization(server.registry, { domain: 'acme.test', policy: 'none' });
    await createAccount(server.registry, { email: 'grace@acme.test' });
    const result = await googleLogin('g-grace', 'grace@acme.test', /\/sso\//);
    expect(result.stoppedAt).to.equal(undefined);
    expect(result.callback?.searchParams.get('code')).to.be.a('string');
  });
});
