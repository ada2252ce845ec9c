import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createClient } from '../../helpers/factories.ts';
import { authorizationPath } from '../../helpers/authorization.ts';

/** Malformed OAuth/OIDC requests get the spec's error responses or a plain error page — never a 500. */
describe('malformed protocol requests', () => {
  let server: TestServer;
  let client: Awaited<ReturnType<typeof createClient>>;
  let http: ReturnType<typeof supertest>;

  before(async () => {
    await resetDatabase();
    server = await startTestServer();
    client = await createClient(server.registry, { firstParty: true });
    http = supertest(server.url);
  });
  after(async () => server.close());

  it('answers another method at the engine’s endpoints with 405 and the methods they take, never a 500 or “not found”', async () => {
    const cases: Array<[string, string, string]> = [
      ['post', '/auth', 'GET, HEAD'],
      ['post', '/session/end', 'GET, HEAD'],
      ['get', '/token', 'POST, OPTIONS'],
      ['put', '/token', 'POST, OPTIONS'],
      ['get', '/token/revocation', 'POST, OPTIONS'],
      ['get', '/token/introspection', 'POST, OPTIONS'],
      ['delete', '/jwks', 'GET, HEAD, OPTIONS'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await (http as unknown as Record<string, (p: string) => supertest.Test>)[method]!(path).accept('json');
      expect(res.status, `${method} ${path}`).to.equal(405);
      expect(res.headers.allow, `${method} ${path}`).to.equal(allow);
      expect(res.body.error, `${method} ${path}`).to.equal('request.method_not_allowed');
    }
    const page = await http.post('/auth').type('form').send({ client_id: client.clientId }).accept('html');
    expect(page.status).to.equal(405);
    expect(page.text).to.contain('That can’t be done here');
    // The engine's own answers are untouched: a HEAD of JWKS, an unknown path.
    expect((await http.head('/jwks')).status).to.equal(200);
    expect((await http.get('/no-such-endpoint')).status).to.equal(404);
  });

  it('shows an error page for an authorization request without a client', async () => {
    const res = await http.get('/auth?response_type=code&scope=openid').accept('html');
    expect(res.status).to.equal(400);
    expect(res.text).to.contain('The application sent an invalid request');
    expect(res.text).to.contain('missing required parameter');
  });

  it('shows an error page for an unknown client, without redirecting anywhere', async () => {
    const res = await http.get('/auth?client_id=nope&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fevil.example%2F');
    expect(res.status).to.equal(400);
    expect(res.headers.location).to.equal(undefined);
    expect(res.text).to.contain('Unknown application');
  });

  it('does not redirect to an unregistered redirect_uri (RFC 6749 §4.1.2.1)', async () => {
    const res = await http.get(authorizationPath({ ...client, redirectUri: 'https://evil.example/cb' }));
    expect(res.status).to.equal(400);
    expect(res.headers.location).to.equal(undefined);
    expect(res.text).to.contain('wrong place');
  });

  it('redirects spec errors for a valid client back with state (unsupported response_type)', async () => {
    const res = await http.get(authorizationPath(client, { response_type: 'token' }));
    expect(res.status).to.equal(303);
    // response_type=token defaults to the fragment response mode, so the error travels there.
    const location = new URL(res.headers.location!);
    const params = new URLSearchParams(location.hash.slice(1) || location.search);
    expect(params.get('error')).to.equal('unsupported_response_type');
    expect(params.get('state')).to.equal('state-1');
  });

  it('answers the token endpoint’s bad requests with RFC 6749 §5.2 JSON errors', async () => {
    const noGrant = await http.post('/token').type('form').auth(client.clientId, client.clientSecret!).send('');
    expect(noGrant.status).to.equal(400);
    expect(noGrant.body.error).to.equal('invalid_request');

    const badSecret = await http.post('/token').type('form').auth(client.clientId, 'wrong').send({ grant_type: 'authorization_code', code: 'x', redirect_uri: client.redirectUri, code_verifier: 'y'.repeat(43) });
    expect(badSecret.status).to.equal(401);
    expect(badSecret.body.error).to.equal('invalid_client');

    const badCode = await http.post('/token').type('form').auth(client.clientId, client.clientSecret!).send({ grant_type: 'authorization_code', code: 'forged', redirect_uri: client.redirectUri, code_verifier: 'y'.repeat(43) });
    expect(badCode.status).to.equal(400);
    expect(badCode.body.error).to.equal('invalid_grant');

    const json = await http.post('/token').set('content-type', 'application/json').auth(client.clientId, client.clientSecret!).send('{"grant_type":');
    expect(json.status).to.be.within(400, 499);
    expect(json.body.error).to.be.a('string');

    const garbage = await http.post('/token').set('content-type', 'application/x-www-form-urlencoded').send('%%%&&&==');
    expect(garbage.status).to.be.within(400, 499);
  });

  it('answers userinfo without a token with a bearer challenge (RFC 6750 §3)', async () => {
    const res = await http.get('/me');
    expect(res.status).to.equal(401);
    expect(res.headers['www-authenticate']).to.match(/^Bearer/);
  });

  it('refuses an oversized request line or parameter without failing', async () => {
    const res = await http.get(authorizationPath(client, { state: 'x'.repeat(20_000) }));
    expect(res.status).to.be.within(300, 499);
    const health = await http.get('/healthz');
    expect(health.status).to.equal(200);
  });

  it('shows a plain not-found page for unknown paths', async () => {
    const res = await http.get('/no/such/page').accept('html');
    expect(res.status).to.equal(404);
    expect(res.text).to.contain('Page not found');
    const json = await http.get('/no/such/page').accept('json');
    expect(json.status).to.equal(404);
    expect(json.body.error).to.equal('request.not_found');
  });
});

describe('operational endpoints', () => {
  let server: TestServer;
  before(async () => { server = await startTestServer(); });
  after(async () => server.close());

  it('/healthz says the process is up', async () => {
    const res = await supertest(server.url).get('/healthz');
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({ status: 'ok' });
  });

  it('/readyz says ready when the database answers and migrations are applied', async () => {
    const res = await supertest(server.url).get('/readyz');
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({ status: 'ready' });
  });

  it('puts a request id on every response and keeps a well-formed incoming one', async () => {
    const fresh = await supertest(server.url).get('/healthz');
    expect(fresh.headers['x-request-id']).to.match(/^[0-9a-f-]{36}$/);
    const kept = await supertest(server.url).get('/healthz').set('x-request-id', 'edge-1234abcd');
    expect(kept.headers['x-request-id']).to.equal('edge-1234abcd');
    const refused = await supertest(server.url).get('/healthz').set('x-request-id', 'bad id with spaces');
    expect(refused.headers['x-request-id']).not.to.equal('bad id with spaces');
  });

  it('serves discovery and a JWKS with public ES256 and RS256 keys only', async () => {
    const discovery = await supertest(server.url).get('/.well-known/openid-configuration');
    expect(discovery.body.issuer).to.equal(server.url);
    expect(discovery.body.code_challenge_methods_supported).to.deep.equal(['S256']);
    expect(discovery.body.response_types_supported).to.deep.equal(['code', 'none']);
    expect(discovery.body.token_endpoint_auth_methods_supported, 'only what a client can be registered with').to.have.members(['client_secret_basic', 'client_secret_post', 'none']);
    expect(discovery.body.backchannel_logout_supported).to.equal(true);
    const jwks = await supertest(server.url).get('/jwks');
    const algs = jwks.body.keys.map((k: { alg: string }) => k.alg).sort();
    expect(algs).to.include.members(['ES256', 'RS256']);
    for (const key of jwks.body.keys) expect(key).not.to.have.any.keys('d', 'p', 'q', 'dp', 'dq', 'qi');
  });
});
