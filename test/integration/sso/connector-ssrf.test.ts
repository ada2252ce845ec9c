import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount } from '../../helpers/factories.ts';
import { postForm, signInToAccount } from '../../helpers/account-pages.ts';
import { startUpstreamIdp } from '../../helpers/upstream-idp.ts';
import { ssoOrganization } from '../../helpers/sso.ts';

/**
 * A connector's issuer is anyone's choice (any account can create an organization and register
 * one), so the server's requests to it must not reach its own network (SSRF, docs/flows/sso.md):
 * refused at registration when the address is visibly private, refused at connect time whatever a
 * name resolves to, and the console shows a category of failure, never the raw network error.
 */
describe('SSO connectors: no requests to private addresses (SSRF)', () => {
  let server: TestServer;
  let strict: TestServer | undefined;
  let upstream: Awaited<ReturnType<typeof startUpstreamIdp>>;
  let listener: Server | undefined;

  beforeEach(async () => {
    await resetDatabase();
    upstream = await startUpstreamIdp({ clientId: 'lanyard-at-acme' });
    server = await startTestServer();
  });
  afterEach(async () => {
    await strict?.close();
    strict = undefined;
    await server.close();
    await upstream.close();
    if (listener) await new Promise<void>((resolve) => { listener!.closeAllConnections(); listener!.close(() => resolve()); });
    listener = undefined;
  });

  it('FINDING: an OIDC connector’s issuer on a private, link-local or loopback https address is refused (SSRF from any user)', async () => {
    // Any active account can create an organization and register a connector; "Test connection"
    // and discovery then make this server fetch <issuer>/.well-known/openid-configuration.
    // Production's setting: private upstreams are not allowed (tests and development allow them).
    strict = await startTestServer({ overrides: { allowPrivateNetworkUpstreams: false } });
    const anyone = await createAccount(strict.registry, { email: 'anyone@example.org' });
    const org = await strict.registry.organizations.service.create(anyone.id, 'Probe');
    if (!org.ok) throw new Error(org.problem);
    for (const issuer of ['https://169.254.169.254/latest', 'https://10.0.0.1', 'https://192.168.1.1:8443', 'https://[::1]:5432', 'https://[fd00::1]', 'https://0x7f000001', 'https://127.1', 'https://localhost', 'http://127.0.0.1:4000', 'https://[::ffff:127.0.0.1]']) {
      const made = await strict.registry.sso.connectors.create(anyone.id, org.organization.id, 'oidc', { name: `c ${issuer}`, config: { issuer, clientId: 'x', scopes: 'openid' }, clientSecret: 'y' });
      expect(made.ok ? 'accepted' : made.problem, issuer).to.equal('connector.config_invalid');
    }
    const publicOne = await strict.registry.sso.connectors.create(anyone.id, org.organization.id, 'oidc', { name: 'public', config: { issuer: 'https://login.acme.example', clientId: 'x', scopes: 'openid' }, clientSecret: 'y' });
    expect(publicOne.ok, 'a public https issuer is accepted').to.equal(true);
  });

  it('refuses at connect time a name that resolves to loopback, and the console shows only “refused: private address”', async () => {
    // Registered where private upstreams are allowed (an older row, or a name that resolved to a
    // public address then): `localhost` is a name, so only the connection can tell.
    const sso = await ssoOrganization(server.registry, { domain: 'acme.test', issuer: upstream.issuer.replace('127.0.0.1', 'localhost'), policy: 'none' });
    strict = await startTestServer({ overrides: { allowPrivateNetworkUpstreams: false } });
    const admin = (await signInToAccount(strict.url, sso.admin.email)).agent;
    const path = `/admin/organizations/${sso.org.id}/connectors/${sso.connectorId}`;
    const tested = await postForm(admin, path, `${path}/test`);
    expect(tested.status).to.equal(502);
    expect(tested.text).to.contain('refused: private address');
    expect(tested.text).to.not.match(/fetch failed|ECONN|other side closed/);
    const row = (await strict.registry.db.query<{ last_failure: string }>('SELECT last_failure FROM connectors WHERE id = $1', [sso.connectorId])).rows[0]!;
    expect(row.last_failure).to.equal('upstream refused: private address');
    expect(upstream.requests.length, 'the upstream was never asked').to.equal(0);
  });

  it('names the category of a failure — unreachable, not an OpenID provider — never the network’s own words', async () => {
    // A listener that closes every connection at once: the raw error is "other side closed".
    listener = createServer((req) => req.socket.destroy());
    await new Promise<void>((resolve) => listener!.listen(0, '127.0.0.1', resolve));
    const closing = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`;
    const sso = await ssoOrganization(server.registry, { domain: 'acme.test', issuer: closing, policy: 'none' });
    const admin = (await signInToAccount(server.url, sso.admin.email)).agent;
    const path = `/admin/organizations/${sso.org.id}/connectors/${sso.connectorId}`;
    const tested = await postForm(admin, path, `${path}/test`);
    expect(tested.status).to.equal(502);
    expect(tested.text).to.contain('unreachable');
    expect(tested.text).to.not.match(/fetch failed|other side closed|ECONN|socket/i);
    const page = await admin.get(path);
    expect(page.text).to.contain('upstream unreachable');
    expect(page.text).to.not.match(/other side closed|fetch failed/);

    // Something answers, but no discovery document: Lanyard itself under a path.
    const changed = await server.registry.sso.connectors.update(sso.admin.id, sso.org.id, sso.connectorId, { name: 'Company sign-in', config: { issuer: `${server.url}/nothing-here`, clientId: 'x', scopes: 'openid' } });
    expect(changed.ok, JSON.stringify(changed)).to.equal(true);
    const again = await postForm(admin, path, `${path}/test`);
    expect(again.status).to.equal(502);
    expect(again.text).to.contain('not an OpenID provider');
    expect((await admin.get(path)).text).to.contain('upstream not an OpenID provider');
  });
});
