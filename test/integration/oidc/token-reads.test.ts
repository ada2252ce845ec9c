import { expect } from 'chai';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { PageDriver } from '../../helpers/login-driver.ts';
import { sha256 } from '../../../src/shared/crypto.ts';

/**
 * The engine's reads after a token's (its session, its grant) are made with the token's own lookup
 * and kept for the request (decision 0071): these requests must still refuse a token whose session
 * or grant is gone while the token's own row is alive, and make the statements the decision says.
 */
describe('userinfo, introspection and refresh read a token\'s session and grant with it (decision 0071)', () => {
  let server: TestServer;
  const statements: string[] = [];
  let db: Awaited<ReturnType<typeof testDatabase>>;
  before(async () => {
    await resetDatabase();
    db = await testDatabase();
    const counted = Object.create(db);
    counted.query = (sql: string, params?: readonly unknown[]) => { statements.push(sql); return db.query(sql, params); };
    server = await startTestServer({ db: counted });
  });
  after(async () => server.close());

  async function login(scope = 'openid email') {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true });
    const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: client.redirectUri, scope, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'st', ...(scope.includes('offline_access') ? { prompt: 'consent' } : {}) });
    const driver = new PageDriver(server.url);
    const callback = await driver.authorize(url.href, { email: account.email, password: PASSWORD });
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: 'st' });
    return { account, client, config, tokens, driver };
  }
  const me = (token: string) => fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${token}` } });

  it('makes one statement of the token, its session and its grant', async () => {
    const { config, tokens } = await login();
    const payloadStatements = () => statements.splice(0).filter((sql) => /\boidc_payloads\b/.test(sql));
    payloadStatements();
    expect((await me(tokens.access_token)).status).to.equal(200);
    expect(payloadStatements(), 'userinfo').to.have.length(1);
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).to.equal(true);
    // No hint (openid-client's default): the engine looks the value up as an access token, client
    // credentials and a refresh token side by side (oidc-provider's findToken): one statement.
    expect(payloadStatements(), 'introspection').to.have.length(1);
    expect((await oidc.tokenIntrospection(config, tokens.access_token, { token_type_hint: 'access_token' })).active).to.equal(true);
    expect(payloadStatements(), 'introspection with the hint').to.have.length(1);
    // A refresh token with its hint: the engine looks it up alone first, then (found) stops.
    expect((await oidc.tokenIntrospection(config, tokens.refresh_token!, { token_type_hint: 'refresh_token' })).active).to.equal(true);
    expect(payloadStatements(), 'a refresh token with its hint').to.have.length(1);
    // An access token given the refresh token's hint: refresh token alone, then the two others together.
    expect((await oidc.tokenIntrospection(config, tokens.access_token, { token_type_hint: 'refresh_token' })).active).to.equal(true);
    expect(payloadStatements(), 'the wrong hint').to.have.length(2);
    await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(payloadStatements(), 'refresh: the lookup, then the batch of writes').to.have.length(2);
    await oidc.tokenRevocation(config, tokens.access_token, { token_type_hint: 'access_token' });
    // Revocation looks the value up as introspection does (one statement), then deletes it and,
    // by the engine's revokeGrantPolicy, its grant's other tokens.
    const revocation = payloadStatements();
    expect(revocation.filter((sql) => /^\s*SELECT/i.test(sql)), 'revocation: the lookup').to.have.length(1);
    expect(revocation.filter((sql) => /^\s*DELETE/i.test(sql)), 'revocation: the deletions').to.have.length(revocation.length - 1);
    expect((await me(tokens.access_token)).status).to.equal(401);
  });

  it('refuses a token whose session is gone while its own row and grant live: /me 401, introspection inactive, refresh invalid_grant', async () => {
    const { config, tokens } = await login();
    expect((await me(tokens.access_token)).status).to.equal(200);
    await db.query(`DELETE FROM oidc_payloads WHERE model = 'Session'`);
    expect((await me(tokens.access_token)).status).to.equal(401);
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).to.equal(false);
    expect((await oidc.tokenIntrospection(config, tokens.refresh_token!)).active).to.equal(false);
    const r = await oidc.refreshTokenGrant(config, tokens.refresh_token!).catch((e: unknown) => e);
    expect((r as oidc.ResponseBodyError).error).to.equal('invalid_grant');
  });

  it('refuses a token whose grant is gone while its own row and session live: the same three', async () => {
    const { config, tokens } = await login();
    const { rows } = await db.query<{ grant_id: string }>(`SELECT grant_id FROM oidc_payloads WHERE model = 'AccessToken' AND id_hash = $1`, [sha256(tokens.access_token)]);
    await db.query(`DELETE FROM oidc_payloads WHERE model = 'Grant' AND id_hash = $1`, [sha256(rows[0]!.grant_id)]);
    expect((await me(tokens.access_token)).status).to.equal(401);
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).to.equal(false);
    const r = await oidc.refreshTokenGrant(config, tokens.refresh_token!).catch((e: unknown) => e);
    expect((r as oidc.ResponseBodyError).error).to.equal('invalid_grant');
  });

  it('after RP-initiated logout: /me 401 and introspection inactive', async () => {
    const { config, tokens, driver } = await login();
    const confirm = await driver.agent.get('/session/end');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.text)?.[1];
    const done = await driver.agent.post('/session/end/confirm').type('form').send({ xsrf, logout: 'yes' });
    expect(done.status).to.equal(303);
    expect((await me(tokens.access_token)).status).to.equal(401);
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).to.equal(false);
  });

  it('keeps a token that does not expire with the session alive without it, and still checks its grant', async () => {
    // offline_access is granted with prompt=consent (OIDC Core §11): the tokens do not expire with the session.
    const { config, tokens } = await login('openid email offline_access');
    expect(tokens.scope?.split(' ')).to.include('offline_access');
    await db.query(`DELETE FROM oidc_payloads WHERE model = 'Session'`);
    expect((await me(tokens.access_token)).status).to.equal(200);
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).to.equal(true);
    await db.query(`DELETE FROM oidc_payloads WHERE model = 'Grant'`);
    expect((await me(tokens.access_token)).status).to.equal(401);
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).to.equal(false);
  });
});
