import { expect } from 'chai';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { PageDriver } from '../../helpers/login-driver.ts';
import { startLogoutReceiver } from '../../helpers/receiver.ts';

describe('logout everywhere (RP-initiated + back-channel logout)', () => {
  let server: TestServer;
  let receiver: Awaited<ReturnType<typeof startLogoutReceiver>>;

  before(async () => {
    await resetDatabase();
    server = await startTestServer();
    receiver = await startLogoutReceiver();
  });
  after(async () => {
    await server.close();
    await receiver.close();
  });

  it('sends every client of the session a signed logout token, and kills session-bound refresh tokens', async () => {
    const account = await createAccount(server.registry);
    const jira = await createClient(server.registry, { firstParty: true, name: 'Jira', backchannelLogoutUri: `${receiver.url}/jira/logout` });
    const trello = await createClient(server.registry, { firstParty: true, name: 'Trello', backchannelLogoutUri: `${receiver.url}/trello/logout` });
    const driver = new PageDriver(server.url);

    const signIn = async (client: typeof jira) => {
      const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: client.redirectUri, scope: 'openid email', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'st',
      });
      const callback = await driver.authorize(url.href, { email: account.email, password: PASSWORD });
      return { config, tokens: await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: 'st' }) };
    };

    const first = await signIn(jira);
    const pagesAfterFirst = driver.seen.length;
    const second = await signIn(trello);
    expect(driver.seen.length, 'the second product reuses the session: no login page').to.equal(pagesAfterFirst);
    // The engine gives each client its own sid for the one session.
    const sids: Record<string, unknown> = { [jira.clientId]: first.tokens.claims()!.sid, [trello.clientId]: second.tokens.claims()!.sid };
    expect(sids[jira.clientId]).to.be.a('string');

    // RP-initiated logout from Jira: confirmation page, then the engine's form is submitted.
    const endSession = oidc.buildEndSessionUrl(first.config, { id_token_hint: first.tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:9/' });
    const confirm = await driver.agent.get(driver.path(endSession.href));
    expect(confirm.status).to.equal(200);
    expect(confirm.text).to.contain('Log out?');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.text)?.[1];
    expect(xsrf).to.be.a('string');
    const done = await driver.agent.post('/session/end/confirm').type('form').send({ xsrf, logout: 'yes' });
    expect(done.status).to.equal(303);
    expect(done.headers.location).to.equal('http://127.0.0.1:9/');

    expect(receiver.deliveries.map((d) => d.path).sort()).to.deep.equal(['/jira/logout', '/trello/logout']);
    const jwks = jose.createRemoteJWKSet(new URL(`${server.url}/jwks`));
    for (const delivery of receiver.deliveries) {
      const audience = delivery.path.startsWith('/jira') ? jira.clientId : trello.clientId;
      // OIDC Back-Channel Logout 1.0 §2.6: signature, iss, aud, iat, jti, events, sid/sub, no nonce.
      const { payload, protectedHeader } = await jose.jwtVerify(delivery.logoutToken, jwks, {
        issuer: server.url,
        audience,
        typ: 'logout+jwt',
        requiredClaims: ['iat', 'jti', 'events', 'sid', 'sub'],
      });
      expect(protectedHeader.alg).to.equal('ES256');
      expect(payload.events).to.deep.equal({ 'http://schemas.openid.net/event/backchannel-logout': {} });
      expect(payload.sid).to.equal(sids[audience]);
      expect(payload.sub).to.equal(account.id);
      expect(payload).not.to.have.property('nonce');
    }

    // Refresh tokens issued without offline_access were bound to the session that just ended.
    const refresh = await oidc.refreshTokenGrant(second.config, second.tokens.refresh_token!).catch((err: unknown) => err);
    expect((refresh as oidc.ResponseBodyError).error).to.equal('invalid_grant');
  });

  it('asks before logging out and keeps the session when the user stays', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true });
    const driver = new PageDriver(server.url);
    const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: client.redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    await driver.authorize(url.href, { email: account.email, password: PASSWORD });

    const confirm = await driver.agent.get('/session/end');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.text)?.[1];
    const stay = await driver.agent.post('/session/end/confirm').type('form').send({ xsrf });
    expect(stay.status).to.equal(303);
    expect(stay.headers.location).to.match(/\/session\/end\/success/);
    // Still signed in: a new authorization completes without any page.
    const pages = driver.seen.length;
    await driver.authorize(url.href, { email: account.email, password: PASSWORD });
    expect(driver.seen.length).to.equal(pages);
  });
});
