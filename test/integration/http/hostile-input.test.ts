import { expect } from 'chai';
import supertest from 'supertest';
import { gzipSync } from 'node:zlib';
import { request } from 'node:http';
import { connect } from 'node:net';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient } from '../../helpers/factories.ts';
import { authorizationPath, startInteraction } from '../../helpers/authorization.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { signInToAccount } from '../../helpers/account-pages.ts';
import { captureLogs, type CapturedLogs } from '../../helpers/log-capture.ts';

/**
 * Input no browser or client of ours sends: refused with a 4xx (or the protocol's error), one
 * warn-level line for the operator, never a 500 and never an error-level line.
 */
describe('hostile input', () => {
  let server: TestServer;
  let logs: CapturedLogs;
  let client: Awaited<ReturnType<typeof createClient>>;
  let http: ReturnType<typeof supertest>;

  before(async () => {
    await resetDatabase();
    logs = captureLogs('info');
    server = await startTestServer({ logger: logs.logger });
    client = await createClient(server.registry, { firstParty: true });
    http = supertest(server.url);
  });
  after(async () => server.close());
  beforeEach(() => logs.clear());
  afterEach(function () {
    if (this.currentTest?.state !== 'passed') return;
    expect(logs.atLeast(50), 'error-level log lines').to.deep.equal([]);
  });

  const warnings = () => logs.atLeast(40).filter((l) => l.level === 40).map((l) => l.code);

  it('refuses a compressed form body with 415, whether or not it really is compressed', async () => {
    const agent = supertest.agent(server.url);
    const uid = await startInteraction(agent, client);
    const csrf = csrfFrom((await agent.get(`/interaction/${uid}`)).text);
    const form = `_csrf=${csrf}&email=a%40example.com`;
    for (const [coding, body] of [['gzip', form], ['gzip', gzipSync(form)], ['deflate', form], ['br', form], ['x-unknown', form]] as const) {
      const res = await agent.post(`/interaction/${uid}/identify`).set('content-type', 'application/x-www-form-urlencoded').set('content-encoding', coding).send(body);
      expect(res.status, coding).to.equal(415);
      expect(res.text).to.contain('Send it uncompressed');
    }
    expect(warnings()).to.deep.equal(Array(5).fill('request.unsupported_encoding'));
    // Identity is what browsers send: still accepted.
    const plain = await agent.post(`/interaction/${uid}/identify`).set('content-type', 'application/x-www-form-urlencoded').set('content-encoding', 'identity').send(form);
    expect(plain.status).to.equal(303);
    expect(plain.headers.location).to.match(/\/password\?email=/);
  });

  it('answers a method no route knows (WebDAV’s, say) with 501 and a warn line, on every router of ours', async () => {
    const paths = ['/account', '/account/profile', '/admin', '/password/forgot', '/interaction/abc', '/api/profiles/me', '/api/security-events'];
    for (const method of ['PROPFIND', 'MKCOL', 'LOCK', 'SEARCH']) {
      for (const path of paths) {
        const res = await http[method.toLowerCase() as 'get'](path).accept('json').catch((err: { response?: supertest.Response }) => err.response!);
        expect(res.status, `${method} ${path}`).to.be.oneOf([404, 405, 501]);
        if (res.status === 501) expect(res.body.error, `${method} ${path}`).to.equal('request.method_not_implemented');
      }
    }
    expect(warnings()).to.include('request.method_not_implemented');
    // (The afterEach hook checks that none of it reached error level.)
  });

  it('refuses NUL in form fields, JSON bodies and our paths with 400', async () => {
    const agent = supertest.agent(server.url);
    const uid = await startInteraction(agent, client);
    const csrf = csrfFrom((await agent.get(`/interaction/${uid}`)).text);
    const form = await agent.post(`/interaction/${uid}/identify`).type('form').send(`_csrf=${csrf}&email=a%00%40example.com`);
    expect(form.status).to.equal(400);
    const nested = await agent.post(`/interaction/${uid}/identify`).type('form').send(`_csrf=${csrf}&email=a%40example.com&x[y][z]=%00`);
    expect(nested.status).to.equal(400);
    const key = await agent.post(`/interaction/${uid}/identify`).type('form').send(`_csrf=${csrf}&email=a%40example.com&x%00=1`);
    expect(key.status).to.equal(400);
    expect((await http.get('/api/profiles/acc_%00').accept('json')).status).to.equal(400);
    expect((await http.get('/api/profiles/acc_\u00e9').accept('json')).status).to.equal(404);
    expect((await agent.get('/interaction/a%00b')).status).to.equal(400);

    const account = await createAccount(server.registry);
    const signedIn = (await signInToAccount(server.url, account.email)).agent;
    const token = csrfFrom((await signedIn.get('/account/profile')).text);
    const json = await signedIn.patch('/api/profiles/me').set('x-csrf-token', token).accept('json').send({ name: 'Ada\u0000' });
    expect(json.status).to.equal(400);
    expect(json.body.error).to.equal('request.invalid_characters');
    const gzipped = await signedIn.patch('/api/profiles/me').set('x-csrf-token', token).set('content-type', 'application/json').set('content-encoding', 'gzip').send(gzipSync('{"name":"Ada"}'));
    expect(gzipped.status).to.equal(415);
    expect((await server.registry.accounts.findById(account.id))!.name).to.equal('Ada Lovelace');
    expect(warnings()).to.include('request.invalid_characters');
  });

  it('answers a request with an invalid Host with 400 (RFC 9112 §3.2)', async () => {
    for (const host of ['x y', '%00', 'a:b:c']) {
      const status = await new Promise<number>((resolve, reject) => {
        request({ host: '127.0.0.1', port: new URL(server.url).port, path: '/.well-known/openid-configuration', headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        }).on('error', reject).end();
      });
      expect(status, host).to.equal(400);
    }
    expect(warnings()).to.deep.equal(Array(3).fill('request.invalid_host'));
  });

  it('answers HTTP/1.0 without a Host header (a plain health checker), and refuses HTTP/1.1 without one', async () => {
    const raw = (line: string) => new Promise<string>((resolve, reject) => {
      // Written, not ended: a client's half-close could end the exchange before the answer (the
      // readiness check awaits the database). HTTP/1.0 without keep-alive: the server closes.
      const socket = connect(Number(new URL(server.url).port), '127.0.0.1', () => socket.write(`${line}\r\n\r\n`));
      let answer = '';
      socket.on('data', (chunk) => {
        answer += chunk.toString();
        // An HTTP/1.1 400 may leave the connection open: the status line is all we read.
        if (answer.includes('\r\n')) socket.destroy();
      });
      socket.on('close', () => resolve(answer.split('\r\n')[0]!));
      socket.on('error', reject);
    });
    expect(await raw('GET /healthz HTTP/1.0')).to.match(/^HTTP\/1\.1 200/);
    expect(await raw('GET /readyz HTTP/1.0')).to.match(/^HTTP\/1\.1 200/);
    expect(await raw('GET /healthz HTTP/1.1')).to.match(/^HTTP\/1\.1 400/);
  });

  const payloadRows = async () => Number((await server.registry.db.query<{ n: string }>('SELECT count(*) AS n FROM oidc_payloads')).rows[0]!.n);

  it('answers NUL in authorization parameters with invalid_request on a page, never a redirect', async () => {
    const before = await payloadRows();
    for (const path of [
      '/auth?client_id=a%00b&response_type=code&scope=openid',
      authorizationPath(client, { login_hint: 'a\u0000b' }),
      authorizationPath(client, { nonce: 'a\u0000b' }),
      '/session/end?client_id=a%00',
    ]) {
      const res = await http.get(path);
      expect(res.status, path).to.equal(400);
      expect(res.headers.location, path).to.equal(undefined);
      expect(res.headers['content-type']).to.match(/html/);
    }
    const json = await http.get('/auth?client_id=a%00b').accept('json');
    expect(json.body).to.include({ error: 'invalid_request' });
    expect(await payloadRows()).to.equal(before);
  });

  it('keeps a NUL in bodies the engine parses itself away from the database', async () => {
    const before = await payloadRows();
    const code = await http.post('/token').type('form').auth(client.clientId, client.clientSecret!).send({ grant_type: 'authorization_code', code: 'a\u0000b', redirect_uri: client.redirectUri, code_verifier: 'y'.repeat(43) });
    expect(code.status).to.equal(400);
    expect(code.body.error).to.equal('invalid_grant');
    const unknownClient = await http.post('/token').type('form').send({ grant_type: 'client_credentials', client_id: 'a\u0000b', client_secret: 'x' });
    expect(unknownClient.status).to.equal(401);
    expect(unknownClient.body.error).to.equal('invalid_client');
    const refresh = await http.post('/token').type('form').auth(client.clientId, client.clientSecret!).send({ grant_type: 'refresh_token', refresh_token: '\u0000' });
    expect(refresh.status).to.equal(400);
    const introspect = await http.post('/token/introspection').type('form').auth(client.clientId, client.clientSecret!).send({ token: 'x\u0000' });
    expect(introspect.status).to.be.below(500);
    const revoke = await http.post('/token/revocation').type('form').auth(client.clientId, client.clientSecret!).send({ token: 'x\u0000' });
    expect(revoke.status).to.be.below(500);
    const logout = await http.post('/session/end/confirm').type('form').send({ xsrf: 'x\u0000', logout: 'yes' });
    expect(logout.status).to.equal(400);
    expect(await payloadRows()).to.equal(before);
  });
});
