import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig, ConfigError } from '../../../src/config/load.ts';
import { parseOidcConnectorConfig } from '../../../src/federation/connectors.ts';
import { createUpstreamFetch, networkFailureOf, upstreamRulesOf } from '../../../src/federation/upstream-fetch.ts';

/** A key as `openssl rand` would make one, the same on every run. */
const KEY = createHash('sha256').update('upstream fetch').digest('base64url');
const PRODUCTION = { NODE_ENV: 'production', SECRET_KEY: KEY, ISSUER: 'https://id.example.com', SMTP_URL: 'smtp://mail.example.com:587' };

describe('Connector upstreams (SSRF rules)', () => {
  let server: Server;
  let port: number;
  let hits = 0;

  before(async () => {
    server = createServer((_req, res) => { hits += 1; res.end('{}'); });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));

  it('a production configuration refuses an http issuer, and private addresses, at registration', () => {
    const rules = upstreamRulesOf(loadConfig(PRODUCTION));
    expect(rules).to.deep.equal({ allowHttp: false, allowPrivateAddresses: false });
    for (const issuer of ['http://127.0.0.1:4000', 'http://localhost:4000', 'http://idp.acme.example', 'https://10.1.2.3', 'https://[fe80::1]', 'https://100.64.0.1']) {
      expect(() => parseOidcConnectorConfig({ issuer, clientId: 'a', scopes: '' }, rules), issuer).to.throw(/issuer/);
    }
    expect(parseOidcConnectorConfig({ issuer: 'https://login.acme.example', clientId: 'a', scopes: '' }, rules).issuer).to.equal('https://login.acme.example');
    // Development and test allow a provider on this machine over http.
    const test = upstreamRulesOf(loadConfig({ NODE_ENV: 'test', SECRET_KEY: KEY }));
    expect(test).to.deep.equal({ allowHttp: true, allowPrivateAddresses: true });
    expect(parseOidcConnectorConfig({ issuer: 'http://127.0.0.1:4000', clientId: 'a', scopes: '' }, test).issuer).to.equal('http://127.0.0.1:4000');
  });

  it('refuses ALLOW_PRIVATE_NETWORK_UPSTREAMS in production at start-up', () => {
    try {
      loadConfig({ ...PRODUCTION, ALLOW_PRIVATE_NETWORK_UPSTREAMS: 'true' });
      expect.fail('accepted private upstreams in production');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as ConfigError).problems.join('\n')).to.match(/ALLOW_PRIVATE_NETWORK_UPSTREAMS: cannot be enabled in production/);
    }
  });

  it('refuses at connect time a name resolving to loopback, and literal private addresses, before any byte is sent', async () => {
    const guarded = createUpstreamFetch({ allowHttp: true, allowPrivateAddresses: false });
    hits = 0;
    for (const url of [`http://localhost:${port}/x`, `http://127.0.0.1:${port}/x`, `http://[::ffff:7f00:1]:${port}/x`]) {
      const err = await guarded(url).then(() => undefined, (e: unknown) => e);
      expect(err, url).to.be.instanceOf(Error);
      expect(networkFailureOf(err), url).to.equal('refused: private address');
    }
    expect(hits, 'the local server was never reached').to.equal(0);
    // The rules of tests and development: the same fetch reaches it.
    const open = createUpstreamFetch({ allowHttp: true, allowPrivateAddresses: true });
    expect((await open(`http://localhost:${port}/x`)).status).to.equal(200);
    expect(hits).to.equal(1);
  });

  it('names network failures by category, and leaves the upstream’s answers alone', async () => {
    const open = createUpstreamFetch({ allowHttp: true, allowPrivateAddresses: true });
    const refused = await open('http://127.0.0.1:1/').then(() => undefined, (e: unknown) => e);
    expect(networkFailureOf(refused)).to.equal('unreachable');
    expect(networkFailureOf(new Error('unexpected JWT "iss" (issuer) claim value'))).to.equal(undefined);
  });
});
