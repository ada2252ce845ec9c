import { expect } from 'chai';
import * as jose from 'jose';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { PageDriver } from '../../helpers/login-driver.ts';
import { pkcePair } from '../../helpers/authorization.ts';

/**
 * Two instances on one database (decision 0046): a key rotated through one is published and used
 * by the other without a restart, once it re-reads the key set (SIGNING_KEY_REFRESH_SECONDS).
 */
describe('signing keys follow the database on every instance', function () {
  this.timeout(60_000);
  let a: TestServer;
  let b: TestServer;

  before(async () => {
    await resetDatabase();
    a = await startTestServer();
    b = await startTestServer();
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  const kids = async (server: TestServer) => {
    const res = await fetch(`${server.url}/jwks`);
    expect(res.status).to.equal(200);
    return ((await res.json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
  };

  /** An ID token issued by `server` through its real login pages and token endpoint, verified with its /jwks. */
  async function idTokenFrom(server: TestServer): Promise<string> {
    const account = await createAccount(server.registry);
    const client = await createClient(server.registry, { firstParty: true });
    const { verifier, challenge } = pkcePair();
    const query = new URLSearchParams({
      client_id: client.clientId, response_type: 'code', scope: 'openid', redirect_uri: client.redirectUri,
      code_challenge: challenge, code_challenge_method: 'S256', state: 's', nonce: 'n',
    });
    const callback = await new PageDriver(server.url).authorize(`${server.url}/auth?${query}`, { email: account.email, password: PASSWORD });
    const res = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: client.redirectUri, code_verifier: verifier }),
    });
    expect(res.status).to.equal(200);
    const { id_token: idToken } = (await res.json()) as { id_token: string };
    // The signature verifies with the keys the same instance publishes.
    await jose.jwtVerify(idToken, jose.createLocalJWKSet((await (await fetch(`${server.url}/jwks`)).json()) as jose.JSONWebKeySet), { issuer: server.url });
    return jose.decodeProtectedHeader(idToken).kid!;
  }

  it('publishes and signs with a key rotated through another instance after re-reading, and drops unpublished keys', async () => {
    const before = await kids(b);
    expect(await kids(a)).to.deep.equal(before);

    // Rotation through instance A: active at once, the old keys unpublished at once.
    const rotated = await a.registry.signingKeys.rotate(0, 0);
    const [newEs256] = rotated;
    expect(await kids(b), 'B still holds the key set it started with').to.deep.equal(before);
    expect(await idTokenFrom(b)).to.equal(before[0]);

    expect(await b.registry.signingKeyReload.check()).to.equal(true);
    expect(await kids(b)).to.deep.equal(rotated);
    expect(await idTokenFrom(b), 'B signs with the key rotated through A').to.equal(newEs256);
    expect(await b.registry.signingKeyReload.check(), 'nothing changed since').to.equal(false);
  });

  it('re-reads on its own every SIGNING_KEY_REFRESH_SECONDS', async () => {
    const c = await startTestServer({ overrides: { signingKeyRefreshSeconds: 1 } });
    try {
      const rotated = await a.registry.signingKeys.rotate(0, 3600);
      const started = Date.now();
      while (!(await kids(c)).includes(rotated[0]!)) {
        expect(Date.now() - started, 'published by C within the interval').to.be.below(3_000);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await idTokenFrom(c)).to.equal(rotated[0]);
    } finally {
      await c.close();
    }
  });

  it('refuses a refresh interval longer than the activation delay at start-up', async () => {
    let caught: unknown;
    try {
      await startTestServer({ overrides: { keyActivationDelaySeconds: 30, signingKeyRefreshSeconds: 60 } });
    } catch (err) {
      caught = err;
    }
    expect((caught as { problems?: string[] })?.problems).to.deep.equal(['SIGNING_KEY_REFRESH_SECONDS: must not exceed KEY_ACTIVATION_DELAY_SECONDS (every instance must publish a new key before one signs with it)']);
  });
});
