import { expect } from 'chai';
import supertest from 'supertest';
import { createOidcClient } from '../../../src/federation/oidc-client.ts';
import { startUpstreamIdp } from '../../helpers/upstream-idp.ts';

/**
 * Userinfo is unsigned (OIDC Core §5.3.2 asks only that its `sub` match the ID token's): it may
 * supply the address, its verification and the name the ID token left out, never replace what the
 * signed ID token says about the login — auth_time, amr, acr.
 */
describe('OIDC upstream: userinfo never overrides the signed ID token', () => {
  const REDIRECT = 'http://127.0.0.1:9/callback';
  const MFA_ACR = 'http://schemas.openid.net/pape/policies/2007/06/multi-factor';
  let upstream: Awaited<ReturnType<typeof startUpstreamIdp>>;

  afterEach(async () => upstream?.close());

  /** One login at the upstream: the authorization request, its automatic sign-in, the callback. */
  async function loginThrough(client: ReturnType<typeof createOidcClient>) {
    const started = await client.start();
    const agent = supertest.agent(upstream.issuer);
    let location = started.url;
    for (let i = 0; i < 10 && !location.startsWith(REDIRECT); i += 1) {
      const url = new URL(location, upstream.issuer);
      const res = await agent.get(url.pathname + url.search);
      expect([302, 303], res.text.slice(0, 200)).to.include(res.status);
      location = new URL(res.headers.location!, url).href;
    }
    expect(location.startsWith(REDIRECT), 'reached the callback').to.equal(true);
    return client.finish(new URL(location), started);
  }

  it('takes the address, email_verified and name from userinfo, and auth_time, amr, acr from the ID token only', async () => {
    const future = Math.floor(Date.now() / 1000) + 3600;
    upstream = await startUpstreamIdp({ clientId: 'rp', userinfoOnly: { amr: ['mfa'], acr: MFA_ACR, auth_time: future } });
    upstream.configure(REDIRECT);
    upstream.signInAs({ sub: 'u1', email: 'pat@acme.test', email_verified: true, name: 'Pat' });
    const client = createOidcClient({ issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret, redirectUri: REDIRECT, scope: 'openid email profile' });
    const claims = await loginThrough(client);
    expect(upstream.userinfoRequests, 'the ID token lacked the address, so userinfo was asked').to.equal(1);
    expect(claims.email).to.equal('pat@acme.test');
    expect(claims.emailVerified).to.equal(true);
    expect(claims.name).to.equal('Pat');
    expect(claims.amr, 'amr from userinfo is ignored').to.not.include('mfa');
    expect(claims.acr, 'acr from userinfo is ignored').to.not.equal(MFA_ACR);
    expect(claims.authTime, 'auth_time from userinfo is ignored').to.not.equal(future);
    expect(claims.authTime).to.be.a('number').and.to.be.at.most(Math.floor(Date.now() / 1000));
  });
});
