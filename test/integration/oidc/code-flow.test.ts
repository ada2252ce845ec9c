import { expect } from 'chai';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { PageDriver } from '../../helpers/login-driver.ts';

/**
 * A relying party built on openid-client (a library we did not write) against the real server:
 * discovery, authorization code + PKCE through the real login pages, ID token validation,
 * userinfo, refresh with rotation and reuse detection, revocation and introspection.
 */
describe('authorization code flow with openid-client', () => {
  let server: TestServer;

  before(async () => {
    await resetDatabase();
    server = await startTestServer();
  });
  after(async () => server.close());

  async function discover(clientId: string, clientSecret?: string) {
    return oidc.discovery(new URL(server.url), clientId, clientSecret, clientSecret ? undefined : oidc.None(), {
      execute: [oidc.allowInsecureRequests],
    });
  }

  async function login(config: oidc.Configuration, redirectUri: string, email: string, scope: string, extra: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...extra,
    });
    const driver = new PageDriver(server.url);
    const callback = await driver.authorize(url.href, { email, password: PASSWORD });
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    return { tokens, driver };
  }

  it('logs a first-party web client in, validates the ID token and reads userinfo', async () => {
    const account = await createAccount(server.registry, { name: 'Grace Hopper' });
    const client = await createClient(server.registry, { firstParty: true, name: 'Jira' });
    const config = await discover(client.clientId, client.clientSecret);

    const { tokens, driver } = await login(config, client.redirectUri, account.email, 'openid profile email');
    expect(driver.seen).to.deep.equal(['login', 'password']); // first party: no consent page

    const claims = tokens.claims()!;
    expect(claims.sub).to.equal(account.id);
    expect(claims.iss).to.equal(server.url);
    expect(claims.aud).to.equal(client.clientId);
    expect(claims.amr).to.deep.equal(['pwd']);
    expect(tokens.access_token).to.be.a('string');
    expect(tokens.refresh_token, 'first-party clients get a session-bound refresh token').to.be.a('string');

    const header = JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString());
    expect(header.alg).to.equal('ES256');

    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, account.id);
    expect(userinfo).to.include({ sub: account.id, email: account.email, email_verified: true, name: 'Grace Hopper' });
  });

  it('rotates refresh tokens and revokes the whole grant when a rotated one is replayed', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true });
    const config = await discover(client.clientId, client.clientSecret);
    const { tokens } = await login(config, client.redirectUri, account.email, 'openid email offline_access', { prompt: 'consent' });
    expect(tokens.scope?.split(' ')).to.include('offline_access');

    const first = tokens.refresh_token!;
    const refreshed = await oidc.refreshTokenGrant(config, first);
    expect(refreshed.refresh_token).to.be.a('string').and.not.equal(first);
    expect(refreshed.claims()?.sub).to.equal(account.id);

    // Replaying the rotated token is refused (RFC 9700 §4.14.2) ...
    const replay = await oidc.refreshTokenGrant(config, first).catch((err: unknown) => err);
    expect(replay).to.be.instanceOf(oidc.ResponseBodyError);
    expect((replay as oidc.ResponseBodyError).error).to.equal('invalid_grant');
    // ... and revokes the grant: the token issued by the legitimate refresh is dead too.
    const after = await oidc.refreshTokenGrant(config, refreshed.refresh_token!).catch((err: unknown) => err);
    expect((after as oidc.ResponseBodyError).error).to.equal('invalid_grant');
    const introspection = await oidc.tokenIntrospection(config, refreshed.access_token);
    expect(introspection.active).to.equal(false);
  });

  /** `count` token requests with the same body at once, straight to the endpoint: status and JSON of each. */
  async function atOnce(client: { clientId: string; clientSecret?: string | undefined }, body: Record<string, string>, count: number) {
    const authorization = `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`;
    return Promise.all(Array.from({ length: count }, async () => {
      const res = await fetch(`${server.url}/token`, { method: 'POST', headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body) });
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    }));
  }

  it('exchanges a code presented several times at once only once, and revokes what it issued (RFC 6749 §4.1.2)', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true });
    const config = await discover(client.clientId, client.clientSecret);
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: client.redirectUri, scope: 'openid email', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const callback = await new PageDriver(server.url).authorize(url.href, { email: account.email, password: PASSWORD });
    const code = callback.searchParams.get('code')!;

    const answers = await atOnce(client, { grant_type: 'authorization_code', code, redirect_uri: client.redirectUri, code_verifier: verifier }, 8);
    const issued = answers.filter((a) => a.status === 200);
    expect(issued, JSON.stringify(answers.map((a) => a.status))).to.have.length(1);
    for (const refused of answers.filter((a) => a.status !== 200)) expect(refused).to.deep.include({ status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } });
    // The code was used more than once: what it was exchanged for is revoked too.
    expect((await oidc.tokenIntrospection(config, issued[0]!.body.access_token!)).active).to.equal(false);
    const refresh = await oidc.refreshTokenGrant(config, issued[0]!.body.refresh_token!).catch((err: unknown) => err);
    expect((refresh as oidc.ResponseBodyError).error).to.equal('invalid_grant');
  });

  it('rotates a refresh token presented several times at once only once, and revokes the grant (RFC 9700 §4.14.2)', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true });
    const config = await discover(client.clientId, client.clientSecret);
    const { tokens } = await login(config, client.redirectUri, account.email, 'openid email');

    const answers = await atOnce(client, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, 8);
    const issued = answers.filter((a) => a.status === 200);
    expect(issued, JSON.stringify(answers.map((a) => a.status))).to.have.length(1);
    for (const refused of answers.filter((a) => a.status !== 200)) expect(refused).to.deep.include({ status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } });
    // Neither chain goes on: the one refresh that was answered leads nowhere either.
    const next = await oidc.refreshTokenGrant(config, issued[0]!.body.refresh_token!).catch((err: unknown) => err);
    expect((next as oidc.ResponseBodyError).error).to.equal('invalid_grant');
    expect((await oidc.tokenIntrospection(config, issued[0]!.body.access_token!)).active).to.equal(false);
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).to.equal(false);
  });

  it('revokes an access token so that introspection reports it inactive', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true });
    const config = await discover(client.clientId, client.clientSecret);
    const { tokens } = await login(config, client.redirectUri, account.email, 'openid');

    const before = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(before).to.include({ active: true, sub: account.id, client_id: client.clientId });

    await oidc.tokenRevocation(config, tokens.access_token);
    const after = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(after.active).to.equal(false);
    await oidc.fetchUserInfo(config, tokens.access_token, account.id).then(
      () => expect.fail('userinfo accepted a revoked token'),
      (err: unknown) => expect(err).to.be.instanceOf(oidc.WWWAuthenticateChallengeError),
    );
  });

  it('asks a third-party client’s user for consent and lists what it will get', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: false, name: 'Board Exporter' });
    const config = await discover(client.clientId, client.clientSecret);
    const { tokens, driver } = await login(config, client.redirectUri, account.email, 'openid email');
    expect(driver.seen).to.deep.equal(['login', 'password', 'consent']);
    expect(tokens.claims()?.sub).to.equal(account.id);
    expect(tokens.refresh_token, 'third parties get refresh tokens only with offline_access').to.equal(undefined);
  });

  it('lets a public native client in with PKCE and no secret, after the user confirms the app', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { kind: 'native', firstParty: true, name: 'Trello for mobile', redirectUris: ['com.lanyard.trello:/oauth/callback'] });
    const config = await discover(client.clientId);
    const { tokens, driver } = await login(config, 'com.lanyard.trello:/oauth/callback', account.email, 'openid');
    expect(driver.seen).to.include('consent'); // RFC 8252 §8.6: the user confirms which app
    expect(tokens.claims()?.sub).to.equal(account.id);
    expect(tokens.refresh_token).to.be.a('string');
  });

  it('refuses an authorization request without PKCE with the spec’s error', async () => {
    const client = await createClient(server.registry, { firstParty: true });
    const res = await fetch(`${server.url}/auth?client_id=${client.clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(client.redirectUri)}&state=s1`, { redirect: 'manual' });
    expect(res.status).to.equal(303);
    const location = new URL(res.headers.get('location')!);
    expect(location.origin + location.pathname).to.equal(client.redirectUri);
    expect(location.searchParams.get('error')).to.equal('invalid_request');
    expect(location.searchParams.get('state')).to.equal('s1');
  });

  it('issues client_credentials tokens to service clients and lets them introspect', async () => {
    const client = await createClient(server.registry, { kind: 'service', name: 'Trello backend' });
    const config = await discover(client.clientId, client.clientSecret);
    const tokens = await oidc.clientCredentialsGrant(config, {});
    expect(tokens.access_token).to.be.a('string');
    const introspection = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(introspection).to.include({ active: true, client_id: client.clientId });
  });

  it('answers introspection about another client’s token only to our own products’ servers (RFC 7662 §4)', async () => {
    const account = await createAccount(server.registry);
    const jira = await createClient(server.registry, { firstParty: true, name: 'Jira' });
    const { tokens } = await login(await discover(jira.clientId, jira.clientSecret), jira.redirectUri, account.email, 'openid');
    // Another company's application, even a service client, learns nothing of a token not issued to it…
    for (const kind of ['web', 'service'] as const) {
      const stranger = await createClient(server.registry, { kind, name: `Someone else’s ${kind}` });
      const config = await discover(stranger.clientId, stranger.clientSecret);
      expect(await oidc.tokenIntrospection(config, tokens.access_token), kind).to.deep.equal({ active: false });
      expect(await oidc.tokenIntrospection(config, tokens.refresh_token!), kind).to.deep.equal({ active: false });
    }
    // … while the client it was issued to, and another of our products (a resource server), do.
    expect(await oidc.tokenIntrospection(await discover(jira.clientId, jira.clientSecret), tokens.access_token)).to.include({ active: true, client_id: jira.clientId, sub: account.id });
    const trelloApi = await createClient(server.registry, { kind: 'service', firstParty: true, name: 'Trello API' });
    expect(await oidc.tokenIntrospection(await discover(trelloApi.clientId, trelloApi.clientSecret), tokens.access_token)).to.include({ active: true, client_id: jira.clientId, sub: account.id });
  });

  it('requires redirect_uri at /auth and the same one at /token, even for a client with one registered (OIDC Core §3.1.2.1, RFC 6749 §4.1.3)', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true });
    const without = await fetch(`${server.url}/auth?client_id=${client.clientId}&response_type=code&scope=openid&code_challenge=${'c'.repeat(43)}&code_challenge_method=S256`, { redirect: 'manual', headers: { accept: 'text/html' } });
    expect(without.status, 'nowhere to send the error but a page').to.equal(400);
    expect(without.headers.get('location')).to.equal(null);

    const verifier = oidc.randomPKCECodeVerifier();
    const config = await discover(client.clientId, client.clientSecret);
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: client.redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const callback = await new PageDriver(server.url).authorize(url.href, { email: account.email, password: PASSWORD });
    const exchange = (extra: Record<string, string>) => fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, code_verifier: verifier, ...extra }),
    });
    const omitted = await exchange({});
    expect(omitted.status).to.equal(400);
    expect((await omitted.json()).error).to.equal('invalid_request');
    const exchanged = await exchange({ redirect_uri: client.redirectUri });
    expect(exchanged.status, 'the code was not spent by the refused request').to.equal(200);
  });

  it('never lets a public client introspect (RFC 7662 §2.1)', async () => {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { kind: 'native', firstParty: true, redirectUris: ['com.lanyard.trello:/oauth/callback'] });
    const config = await discover(client.clientId);
    const { tokens } = await login(config, 'com.lanyard.trello:/oauth/callback', account.email, 'openid');
    const introspection = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(introspection.active).to.equal(false);
  });
});
