import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import supertest from 'supertest';
import { loadConfig } from '../../../src/config/load.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { createRegistry, type Registry } from '../../../src/registry.ts';
import { createApp } from '../../../src/app.ts';
import { testDatabase, resetDatabase } from '../../helpers/db.ts';
import { TEST_SECRET_KEY } from '../../helpers/server.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { authorizationPath } from '../../helpers/authorization.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';

const ISSUER = 'https://id.example.test';

/**
 * The production configuration (NODE_ENV=production, config/production.json: one trusted proxy)
 * behind a TLS-terminating proxy that this test plays: plain HTTP on loopback, with whatever
 * Host and X-Forwarded-* headers a client manages to send through.
 */
describe('origin and cookies in production', () => {
  let server: Server;
  let registry: Registry;
  let base: string;

  before(async () => {
    await resetDatabase();
    const config = loadConfig(
      { NODE_ENV: 'production', ISSUER, SECRET_KEY: TEST_SECRET_KEY, SMTP_URL: 'smtp://127.0.0.1:9', PORT: '0' },
      { overrides: { mailPollSeconds: 0, sweepIntervalSeconds: 0 } },
    );
    expect(config.trustProxy, 'production trusts one proxy hop').to.equal(1);
    registry = await createRegistry(config, { logger: createLogger('silent'), db: await testDatabase() });
    server = createServer(createApp(registry).callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await registry.close();
  });

  it('answers discovery with the issuer’s URLs whatever Host or X-Forwarded-Host a request names, with caching headers', async () => {
    const res = await supertest(base).get('/.well-known/openid-configuration')
      .set('Host', 'evil.example').set('X-Forwarded-Host', 'evil.example').set('X-Forwarded-Proto', 'http');
    expect(res.status).to.equal(200);
    expect(res.body.issuer).to.equal(ISSUER);
    const urls = Object.entries(res.body as Record<string, unknown>).filter(([key, value]) => key.endsWith('_endpoint') || key === 'jwks_uri' ? typeof value === 'string' : false);
    expect(urls.length).to.be.greaterThan(5);
    for (const [key, url] of urls) expect(url, key).to.match(new RegExp(`^${ISSUER}/`));
    expect(res.headers['cache-control']).to.equal('public, max-age=300');

    const jwks = await supertest(base).get('/jwks').set('Host', 'evil.example');
    expect(jwks.status).to.equal(200);
    expect(jwks.headers['cache-control']).to.match(/^public, max-age=\d+$/);
  });

  it('redirects to the issuer, never to the host a request names', async () => {
    const client = await createClient(registry, { firstParty: true });
    const res = await supertest(base).get(authorizationPath(client)).set('Host', 'evil.example').set('X-Forwarded-Host', 'evil.example');
    expect(res.status).to.equal(303);
    expect(res.headers.location).to.match(new RegExp(`^(${ISSUER})?/interaction/`));
  });

  it('sets every cookie Secure without X-Forwarded-Proto, and __Host- prefixed where the path is /', async () => {
    const client = await createClient(registry, { firstParty: true });
    const account = await createAccount(registry);
    const jar = new Map<string, string>();
    const setCookies: string[] = [];
    const keep = (res: supertest.Response) => {
      const raw = res.headers['set-cookie'] as unknown as string[] | undefined;
      for (const line of raw ?? []) {
        setCookies.push(line);
        const [pair] = line.split(';');
        const [name, ...value] = pair!.split('=');
        jar.set(name!, value.join('='));
      }
      return res;
    };
    const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const path = (location: string) => new URL(location, ISSUER).pathname + new URL(location, ISSUER).search;

    const auth = keep(await supertest(base).get(authorizationPath(client)));
    const login = keep(await supertest(base).get(path(auth.headers.location!)).set('Cookie', cookie()));
    const done = keep(await supertest(base).post(`${path(auth.headers.location!)}/password`).set('Cookie', cookie()).type('form')
      .send({ _csrf: csrfFrom(login.text), email: account.email, password: PASSWORD }));
    // The form post resumes the authorization itself (decision 0079): the session cookie comes with it.
    expect(done.status).to.equal(303);
    expect(new URL(done.headers.location!).searchParams.get('code')).to.be.a('string');

    expect(setCookies.length).to.be.greaterThan(4);
    for (const line of setCookies) expect(line, line.split('=')[0]).to.match(/;\s*secure/i);
    const names = setCookies.map((line) => line.split('=')[0]!);
    expect(names).to.include('__Host-session');
    expect(names).to.include('__Host-lanyard.csrf');
    expect(names).to.include('__Host-lanyard.device');
    for (const line of setCookies.filter((l) => l.startsWith('__Host-'))) {
      expect(line).to.match(/;\s*path=\/(;|$)/i);
      expect(line).to.not.match(/;\s*domain=/i);
    }
  });
});
