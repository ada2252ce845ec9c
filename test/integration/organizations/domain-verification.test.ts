import { expect } from 'chai';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import { createAccount } from '../../helpers/factories.ts';
import { startDns, type TestDns } from '../../helpers/dns-server.ts';
import { startWebFiles, type TestWebFiles } from '../../helpers/web-files.ts';
import { startSmtp, type TestSmtp } from '../../helpers/smtp.ts';
import type { Clock } from '../../../src/shared/clock.ts';
import { createDomainVerifier, TXT_PREFIX, WELL_KNOWN_PATH } from '../../../src/organizations/domain-verification.ts';
import { createOrganizationQueries } from '../../../src/persistence/queries/organizations.ts';
import type { DomainView, OrganizationService } from '../../../src/organizations/organizations.ts';

/**
 * Domain verification against a real DNS server on loopback (DNS_SERVERS points at it) and a
 * real web server for the file method (scheme http and its port, as tests may configure).
 */
describe('organizations: domain verification', () => {
  let dns: TestDns;
  let web: TestWebFiles;
  let smtp: TestSmtp;
  let server: TestServer;
  let service: OrganizationService;
  let now = Date.UTC(2026, 10, 1, 12);
  const clock: Clock = { now: () => now };
  const RECHECK = 3600;

  before(async () => {
    dns = await startDns();
    web = await startWebFiles();
  });
  after(async () => {
    await dns.close();
    await web.close();
  });

  beforeEach(async () => {
    await resetDatabase();
    dns.txt.clear();
    dns.a.clear();
    dns.servfail.clear();
    dns.queries.length = 0;
    web.sites.clear();
    web.requests.length = 0;
    now = Date.UTC(2026, 10, 1, 12);
    smtp = await startSmtp();
    server = await startTestServer(serverOptions());
    service = server.registry.organizations.service;
  });

  /** The test server: its resolver and its web server for the file check, plus `overrides`. */
  const serverOptions = (overrides: Record<string, unknown> = {}) => ({
    clock,
    overrides: {
      smtpUrl: smtp.url,
      dnsServers: [dns.server],
      domainVerification: { httpScheme: 'http', httpPort: web.port, timeoutSeconds: 2, recheckIntervalSeconds: RECHECK },
      ...overrides,
    },
  });
  afterEach(async () => {
    await server.close();
    await smtp.close();
  });

  /** An admin with an organization and a pending domain. */
  async function orgWithDomain(domain = 'acme.test', name = 'Acme') {
    const admin = await createAccount(server.registry, { email: `admin-${Math.random().toString(36).slice(2)}@${domain}` });
    const created = await service.create(admin.id, name);
    if (!created.ok) throw new Error(created.problem);
    const added = await service.addDomain(admin.id, created.organization.id, domain);
    if (!added.ok) throw new Error(added.problem);
    return { admin, org: created.organization, domain: added.domain };
  }

  const publishTxt = (d: DomainView, value = d.instructions.txtValue) => dns.txt.set(d.domain, [...(dns.txt.get(d.domain) ?? []), [value]]);
  const serveFrom = (domain: string) => dns.a.set(domain, ['127.0.0.1']);

  it('verifies a domain by its DNS TXT record, asked of the configured resolver', async () => {
    const { admin, org, domain } = await orgWithDomain();
    expect(domain.state).to.equal('pending');
    expect(domain.instructions.txtName).to.equal('acme.test');
    expect(domain.instructions.txtValue).to.match(/^lanyard-domain-verification=[A-Za-z0-9_-]{27}$/);
    dns.txt.set('acme.test', [['v=spf1 -all'], [domain.instructions.txtValue]]);

    const result = await service.verifyDomain(admin.id, org.id, domain.id);
    expect(result.ok).to.equal(true);
    if (!result.ok) return;
    expect(result.method).to.equal('dns');
    expect(result.domain).to.include({ state: 'verified', method: 'dns', lastError: null });
    expect(result.domain.verifiedAt?.getTime()).to.equal(now);
    expect(dns.queries).to.deep.include({ name: 'acme.test', type: 16 });
    expect(web.requests, 'DNS sufficed: no file fetched').to.have.length(0);
    expect(await service.claimsFrozen('acme.test')).to.equal(false);
    expect(await service.holderOf('ACME.test.')).to.deep.equal({ organizationId: org.id, domainId: domain.id, frozen: false });
  });

  it('reads a TXT record split into several strings as one value', async () => {
    const { admin, org, domain } = await orgWithDomain();
    const value = domain.instructions.txtValue;
    dns.txt.set('acme.test', [[value.slice(0, 20), value.slice(20)]]);
    expect((await service.verifyDomain(admin.id, org.id, domain.id)).ok).to.equal(true);
  });

  it('verifies a domain by the file on its web server when there is no TXT record', async () => {
    const { admin, org, domain } = await orgWithDomain();
    serveFrom('acme.test');
    web.set('acme.test', WELL_KNOWN_PATH, { body: `${domain.instructions.fileContent}\n` });
    expect(domain.instructions.fileUrl).to.equal(`http://acme.test:${web.port}${WELL_KNOWN_PATH}`);

    const result = await service.verifyDomain(admin.id, org.id, domain.id);
    expect(result.ok, JSON.stringify(result)).to.equal(true);
    if (result.ok) expect(result.domain).to.include({ state: 'verified', method: 'https' });
    expect(web.requests).to.deep.include({ host: 'acme.test', path: WELL_KNOWN_PATH });
  });

  it('follows a redirect on the same host, and refuses one to another host', async () => {
    const { admin, org, domain } = await orgWithDomain();
    serveFrom('acme.test');
    web.set('acme.test', WELL_KNOWN_PATH, { status: 301, headers: { location: '/verification/file.txt' } });
    web.set('acme.test', '/verification/file.txt', { body: domain.instructions.fileContent });
    expect((await service.verifyDomain(admin.id, org.id, domain.id)).ok).to.equal(true);

    const other = await orgWithDomain('beta.test', 'Beta');
    serveFrom('beta.test');
    serveFrom('evil.test');
    web.set('beta.test', WELL_KNOWN_PATH, { status: 302, headers: { location: `http://evil.test:${web.port}/token.txt` } });
    web.set('evil.test', '/token.txt', { body: other.domain.instructions.fileContent });
    const refused = await service.verifyDomain(other.admin.id, other.org.id, other.domain.id);
    // The summary names the missing TXT record first; the file's own answer says why it failed.
    expect(refused).to.deep.include({ ok: false, problem: 'verification.not_found' });
    if (refused.ok || !('checks' in refused)) throw new Error('expected checks');
    expect(refused.checks[1]).to.deep.include({ method: 'https', problem: 'http_error' }).and.have.property('detail').that.contains('another host');
    expect(web.requests.filter((r) => r.host === 'evil.test')).to.have.length(0);
  });

  it('says which token is wrong, and keeps the domain pending with the error', async () => {
    const { admin, org, domain } = await orgWithDomain();
    publishTxt(domain, `${TXT_PREFIX}someone-elses-token-aaaaaaaaaaa`);
    const result = await service.verifyDomain(admin.id, org.id, domain.id);
    expect(result).to.deep.include({ ok: false, problem: 'verification.wrong_token' });
    if (result.ok || !('checks' in result)) throw new Error('expected checks');
    expect(result.checks[0]).to.deep.include({ ok: false, method: 'dns', problem: 'wrong_token' });
    expect(result.domain.state).to.equal('pending');
    expect(result.domain.lastError).to.contain('another token');
    expect(result.domain.lastCheckedAt?.getTime()).to.equal(now);

    serveFrom('acme.test');
    dns.txt.delete('acme.test');
    web.set('acme.test', WELL_KNOWN_PATH, { body: 'not-the-token' });
    expect(await service.verifyDomain(admin.id, org.id, domain.id)).to.deep.include({ ok: false, problem: 'verification.wrong_token' });
  });

  it('reports a missing record and a missing file as not found, per method', async () => {
    const { admin, org, domain } = await orgWithDomain();
    serveFrom('acme.test');
    const result = await service.verifyDomain(admin.id, org.id, domain.id);
    expect(result).to.deep.include({ ok: false, problem: 'verification.not_found' });
    if (result.ok || !('checks' in result)) throw new Error('expected checks');
    expect(result.checks.map((c) => [c.method, !c.ok && c.problem])).to.deep.equal([['dns', 'not_found'], ['https', 'not_found']]);
  });

  it('reports a failing DNS server as a DNS error and a broken web server as an HTTP error', async () => {
    const { admin, org, domain } = await orgWithDomain();
    dns.servfail.add('acme.test');
    const dnsFailure = await service.verifyDomain(admin.id, org.id, domain.id);
    expect(dnsFailure).to.deep.include({ ok: false, problem: 'verification.dns_error' });

    dns.servfail.clear();
    dns.txt.set('acme.test', [['v=spf1 -all']]);
    serveFrom('acme.test');
    web.set('acme.test', WELL_KNOWN_PATH, { status: 500, body: 'oops' });
    const httpFailure = await service.verifyDomain(admin.id, org.id, domain.id);
    if (httpFailure.ok || !('checks' in httpFailure)) throw new Error('expected checks');
    expect(httpFailure.checks[1]).to.deep.include({ method: 'https', problem: 'http_error' });
    expect(httpFailure.checks[1]).to.have.property('detail').that.contains('500');

    web.set('acme.test', WELL_KNOWN_PATH, { body: `${domain.instructions.fileContent}\n${'x'.repeat(5000)}` });
    const tooLarge = await service.verifyDomain(admin.id, org.id, domain.id);
    if (tooLarge.ok || !('checks' in tooLarge)) throw new Error('expected checks');
    expect(tooLarge.checks[1]).to.have.property('detail').that.contains('larger than');
  });

  it('never fetches the file from a private address unless private network calls are allowed', async () => {
    serveFrom('acme.test');
    web.set('acme.test', WELL_KNOWN_PATH, { body: 'the-token' });
    const options = { dnsServers: [dns.server], httpScheme: 'http' as const, httpPort: web.port, timeoutMs: 2000 };
    const strict = createDomainVerifier({ ...options, allowPrivateNetwork: false });
    const refused = await strict.checkHttps('acme.test', 'the-token');
    expect(refused).to.deep.include({ ok: false, problem: 'http_error' });
    expect(refused).to.have.property('detail').that.contains('private addresses');
    expect(web.requests).to.have.length(0);
    expect(await createDomainVerifier({ ...options, allowPrivateNetwork: true }).checkHttps('acme.test', 'the-token')).to.deep.equal({ ok: true, method: 'https' });
  });

  it('keeps the file check off private addresses whenever upstreams are, even with back-channel logout allowed to reach them', async () => {
    // Production's pair: relying parties on an internal host (ALLOW_PRIVATE_NETWORK_CALLS) and
    // nothing anyone chooses on this network (ALLOW_PRIVATE_NETWORK_UPSTREAMS off): a domain is
    // anyone's choice, so its file check follows the second.
    await server.close();
    server = await startTestServer(serverOptions({ allowPrivateNetworkCalls: true, allowPrivateNetworkUpstreams: false }));
    service = server.registry.organizations.service;
    const { admin, org, domain } = await orgWithDomain();
    serveFrom('acme.test');
    web.set('acme.test', WELL_KNOWN_PATH, { body: domain.instructions.fileContent });
    const result = await service.verifyDomain(admin.id, org.id, domain.id);
    if (result.ok || !('checks' in result)) throw new Error('expected a refusal');
    expect(result.checks[1]).to.deep.include({ method: 'https', problem: 'http_error' });
    expect(result.checks[1]).to.have.property('detail').that.contains('private addresses');
    expect(web.requests, 'nothing was fetched').to.have.length(0);
  });

  it('refuses public mail domains, IP addresses and malformed names, and stores IDNs as punycode', async () => {
    const admin = await createAccount(server.registry);
    const created = await service.create(admin.id, 'Acme');
    if (!created.ok) throw new Error(created.problem);
    const add = (input: unknown) => service.addDomain(admin.id, created.organization.id, input);
    expect(await add('gmail.com')).to.deep.equal({ ok: false, problem: 'domain.public_email' });
    expect(await add('GMX.ch')).to.deep.equal({ ok: false, problem: 'domain.public_email' });
    expect(await add('127.0.0.1')).to.deep.equal({ ok: false, problem: 'domain.ip_address' });
    expect(await add('acme')).to.deep.equal({ ok: false, problem: 'domain.single_label' });
    expect(await add('https://acme.test/')).to.deep.equal({ ok: false, problem: 'domain.malformed' });
    expect(await add(`${'a'.repeat(60)}.`.repeat(5) + 'test')).to.deep.equal({ ok: false, problem: 'domain.too_long' });
    expect(await add({ domain: 'acme.test' })).to.deep.equal({ ok: false, problem: 'domain.empty' });

    const idn = await add('Bücher.TEST.');
    if (!idn.ok) throw new Error(idn.problem);
    expect(idn.domain.domain).to.equal('xn--bcher-kva.test');
    expect(idn.existing).to.equal(false);
    const again = await add('xn--bcher-kva.test');
    expect(again).to.deep.include({ ok: true, existing: true });
    if (again.ok) expect(again.domain.id).to.equal(idn.domain.id);
    publishTxt(idn.domain);
    expect((await service.verifyDomain(admin.id, created.organization.id, idn.domain.id)).ok).to.equal(true);
    expect(dns.queries.map((q) => q.name)).to.include('xn--bcher-kva.test');
  });

  it('refuses a domain another organization holds, at adding and at verifying', async () => {
    const a = await orgWithDomain('acme.test', 'Acme');
    // Org B adds the domain while A's is still pending: allowed (nobody holds it yet).
    const bAdmin = await createAccount(server.registry);
    const b = await service.create(bAdmin.id, 'Impostor');
    if (!b.ok) throw new Error(b.problem);
    const bDomain = await service.addDomain(bAdmin.id, b.organization.id, 'acme.test');
    if (!bDomain.ok) throw new Error(bDomain.problem);
    expect(bDomain.domain.instructions.txtValue).not.to.equal(a.domain.instructions.txtValue);

    publishTxt(a.domain);
    expect((await service.verifyDomain(a.admin.id, a.org.id, a.domain.id)).ok).to.equal(true);
    // Even with its own token published too, B cannot take a held domain.
    publishTxt(bDomain.domain);
    expect(await service.verifyDomain(bAdmin.id, b.organization.id, bDomain.domain.id)).to.deep.equal({ ok: false, problem: 'domain.taken' });
    const c = await service.create(bAdmin.id, 'Third');
    if (!c.ok) throw new Error(c.problem);
    expect(await service.addDomain(bAdmin.id, c.organization.id, 'ACME.test')).to.deep.equal({ ok: false, problem: 'domain.taken' });

    // The database holds the line too: a second held row for one domain is refused.
    const db = await testDatabase();
    const error = await db.query(`UPDATE organization_domains SET state = 'verified', verified_at = now() WHERE id = $1`, [bDomain.domain.id]).catch((err: unknown) => err);
    expect(error).to.have.property('code', '23505');
  });

  it('re-checks held domains: a failure freezes claims and warns the admins once, never releases accounts, and a pass restores', async () => {
    const { admin, org, domain } = await orgWithDomain();
    const db = await testDatabase();
    const second = await createAccount(server.registry, { email: 'second-admin@acme.test', name: 'Grace Hopper' });
    await createOrganizationQueries(db).addMember(db, { organizationId: org.id, accountId: second.id, role: 'admin', addedBy: admin.id, now: new Date(now) });
    publishTxt(domain);
    expect((await service.verifyDomain(admin.id, org.id, domain.id)).ok).to.equal(true);
    const managed = await createAccount(server.registry, { email: 'employee@acme.test' });
    await db.transaction((tx) => server.registry.organizations.managers.claimForOrganization(tx, { accountId: managed.id, organizationId: org.id, domainId: domain.id, now: new Date(now) }));
    const { recheck } = server.registry.organizations;

    // Not due yet: nothing is checked.
    dns.txt.delete('acme.test');
    expect(await recheck.recheckDue()).to.equal(0);

    now += RECHECK * 1000;
    expect(await recheck.recheckDue()).to.equal(1);
    let state = await service.domainState(admin.id, org.id, domain.id);
    if (!state.ok) throw new Error(state.problem);
    expect(state.domain).to.include({ state: 'failing' });
    expect(state.domain.failingSince?.getTime()).to.equal(now);
    expect(state.domain.lastError).to.contain('no TXT record');
    expect(await service.claimsFrozen('acme.test')).to.equal(true);
    expect(await service.holderOf('acme.test')).to.deep.include({ organizationId: org.id, frozen: true });

    await server.registry.mail.delivery.deliverDue();
    const warnings = smtp.messages.filter((m) => m.subject === 'A verified domain of your Lanyard organization failed its check');
    expect(warnings.map((m) => m.to && !Array.isArray(m.to) ? m.to.text : '').sort()).to.deep.equal([admin.email, 'second-admin@acme.test'].sort());
    expect(warnings[0]!.text).to.contain('acme.test').and.contain('Acme').and.contain('stay managed').and.contain(domain.instructions.txtValue);

    // Still failing next time: no second warning; the account stays managed throughout.
    const failingSince = now;
    now += RECHECK * 1000;
    expect(await recheck.recheckDue()).to.equal(1);
    await server.registry.mail.delivery.deliverDue();
    expect(smtp.messages.filter((m) => m.subject?.includes('failed its check'))).to.have.length(2);
    state = await service.domainState(admin.id, org.id, domain.id);
    if (!state.ok) throw new Error(state.problem);
    expect(state.domain.failingSince?.getTime(), 'the episode keeps its start').to.equal(failingSince);
    expect(await server.registry.organizations.managers.ofAccount(managed.id)).to.have.length(1);

    // Published again: verified, claims open, still managed.
    publishTxt(domain);
    now += RECHECK * 1000;
    expect(await recheck.recheckDue()).to.equal(1);
    state = await service.domainState(admin.id, org.id, domain.id);
    if (!state.ok) throw new Error(state.problem);
    expect(state.domain).to.include({ state: 'verified', failingSince: null, lastError: null });
    expect(await service.claimsFrozen('acme.test')).to.equal(false);
    const managers = await server.registry.organizations.managers.ofAccount(managed.id);
    expect(managers).to.have.length(1);
    expect(managers[0]).to.include({ kind: 'organization', organization_id: org.id, domain_id: domain.id, manager_name: 'Acme' });
  });

  it('keeps a failing domain held: another organization cannot verify it meanwhile', async () => {
    const { admin, org, domain } = await orgWithDomain();
    publishTxt(domain);
    expect((await service.verifyDomain(admin.id, org.id, domain.id)).ok).to.equal(true);
    dns.txt.delete('acme.test');
    now += RECHECK * 1000;
    await server.registry.organizations.recheck.recheckDue();
    expect(await service.claimsFrozen('acme.test')).to.equal(true);
    const other = await createAccount(server.registry);
    const b = await service.create(other.id, 'Newcomer');
    if (!b.ok) throw new Error(b.problem);
    expect(await service.addDomain(other.id, b.organization.id, 'acme.test')).to.deep.equal({ ok: false, problem: 'domain.taken' });
  });
});
