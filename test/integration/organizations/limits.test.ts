import { expect } from 'chai';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount } from '../../helpers/factories.ts';
import { startDns, type TestDns } from '../../helpers/dns-server.ts';
import type { Clock } from '../../../src/shared/clock.ts';

/**
 * What one admin can make Lanyard do (docs/flows/organizations.md "Limits", docs/security.md):
 * invitation mail per invited address and per admin, organizations per account, "Verify now" per
 * domain and per admin, names without invisible characters, no public suffix as a domain. Found
 * by an attacker probe of the organizations work: 30 invitations to one address in half a second
 * queued 30 mails, and nothing bounded the rest.
 *
 * THROTTLE_FREE_ATTEMPTS is 1 here: a subject gets two requests at once (the allowance, then the
 * one that starts the first wait, decision 0011), an admin ten times the allowance (eleven).
 */
describe('organizations: limits on what one admin can make us do', () => {
  let dns: TestDns;
  let server: TestServer;
  let now = Date.UTC(2026, 10, 1, 12);
  const clock: Clock = { now: () => now };
  let n = 0;
  const unique = () => `${Date.now().toString(36)}${(n += 1)}`;

  before(async () => {
    dns = await startDns();
  });
  after(async () => {
    await dns.close();
  });

  beforeEach(async () => {
    await resetDatabase();
    now = Date.UTC(2026, 10, 1, 12);
    server = await startTestServer({
      clock,
      overrides: {
        organizationsPerAccount: 3,
        throttle: { freeAttempts: 1, baseDelaySeconds: 2, maxDelaySeconds: 900, windowSeconds: 86_400 },
        dnsServers: [dns.server],
        domainVerification: { httpScheme: 'http', httpPort: 9, timeoutSeconds: 2, recheckIntervalSeconds: 3600 },
      },
    });
  });
  afterEach(() => server.close());

  const mailsTo = async (email: string) =>
    (await server.registry.db.query(`SELECT 1 FROM mail_outbox WHERE template = 'organization-invitation' AND recipient = $1`, [email])).rows.length;

  async function adminWithOrg(name = 'Acme') {
    const admin = await createAccount(server.registry, { email: `admin-${unique()}@admins.example` });
    const created = await server.registry.organizations.service.create(admin.id, name);
    if (!created.ok) throw new Error(created.problem);
    return { admin, org: created.organization };
  }

  describe('invitation mail', () => {
    it('sends a burst of invitations to one address only within the allowance, the rest told to wait, across organizations', async () => {
      const { admin, org } = await adminWithOrg();
      const invitations = server.registry.organizations.invitations;
      const victim = `victim-${unique()}@example.com`;
      const burst = await Promise.all(Array.from({ length: 30 }, () => invitations.invite(admin.id, org.id, victim)));
      expect(burst.filter((r) => r.ok)).to.have.length(2);
      const refused = burst.filter((r) => !r.ok);
      expect(refused).to.have.length(28);
      for (const r of refused) {
        expect(r).to.include({ ok: false, problem: 'invitation.throttled' });
        expect((r as { retryAfterSeconds: number }).retryAfterSeconds).to.be.within(1, 900);
      }
      expect(await mailsTo(victim), 'mails queued').to.equal(2);

      // Another organization's admin, inviting the same address, is held back by the address's counter.
      const other = await adminWithOrg('Other');
      expect(await invitations.invite(other.admin.id, other.org.id, victim)).to.include({ ok: false, problem: 'invitation.throttled' });
      expect(await mailsTo(victim)).to.equal(2);

      // Slowed, never stopped: once the wait has run out, the next invitation goes out.
      now += 3_000;
      expect(await invitations.invite(other.admin.id, other.org.id, victim)).to.include({ ok: true });
      expect(await mailsTo(victim)).to.equal(3);
      // A typo costs nothing: refusals without mail are not counted.
      expect(await invitations.invite(admin.id, org.id, 'not an address')).to.deep.equal({ ok: false, problem: 'invitation.email_invalid' });
    });

    it('limits one admin inviting many addresses (ten times the allowance, then waits)', async () => {
      const { admin, org } = await adminWithOrg();
      const invitations = server.registry.organizations.invitations;
      const results = [];
      for (let i = 0; i < 13; i++) results.push(await invitations.invite(admin.id, org.id, `person-${i}-${unique()}@example.com`));
      expect(results.slice(0, 11).every((r) => r.ok), 'the allowance and the one that starts the wait').to.equal(true);
      expect(results.slice(11).map((r) => (r.ok ? 'sent' : r.problem))).to.deep.equal(['invitation.throttled', 'invitation.throttled']);
      // Another admin is not held back by this one.
      const other = await adminWithOrg('Other');
      expect(await invitations.invite(other.admin.id, other.org.id, `fresh-${unique()}@example.com`)).to.include({ ok: true });
    });
  });

  describe('creating organizations', () => {
    it('refuses a fourth organization to an account that is an admin of three (ORGANIZATIONS_PER_ACCOUNT), even when asked at once', async () => {
      const ada = await createAccount(server.registry);
      const service = server.registry.organizations.service;
      // One at a time, past the throttle's waits: the bound itself.
      const made = [];
      for (let i = 0; i < 4; i++) {
        made.push(await service.create(ada.id, `Org ${i}`));
        now += 60_000;
      }
      expect(made.map((r) => (r.ok ? 'created' : r.problem))).to.deep.equal(['created', 'created', 'created', 'organization.limit']);
      expect(await service.listFor(ada.id)).to.have.length(3);

      // At once: the account row is locked while counting, so parallel requests cannot all slip under.
      const bob = await createAccount(server.registry);
      await service.create(bob.id, 'First');
      now += 60_000;
      const parallel = await Promise.all([service.create(bob.id, 'A'), service.create(bob.id, 'B')]);
      now += 60_000;
      const last = await service.create(bob.id, 'C');
      expect([...parallel, last].filter((r) => r.ok)).to.have.length(2);
      expect(await service.listFor(bob.id)).to.have.length(3);
    });

    it('throttles creating per account, with the wait', async () => {
      const ada = await createAccount(server.registry);
      const service = server.registry.organizations.service;
      const burst = await Promise.all([0, 1, 2].map((i) => service.create(ada.id, `Org ${i}`)));
      expect(burst.filter((r) => r.ok)).to.have.length(2);
      const refused = burst.find((r) => !r.ok) as { problem: string; retryAfterSeconds: number };
      expect(refused.problem).to.equal('organization.throttled');
      expect(refused.retryAfterSeconds).to.be.within(1, 2);
    });

    it('refuses names that are invisible or reorder text, and stores names in NFC', async () => {
      const ada = await createAccount(server.registry);
      const service = server.registry.organizations.service;
      for (const name of ['\u200B\u200B\u200B', 'Acme \u202Egnp.exe', 'Ac\u2066me\u2069', '\u3164', 'Acme\uFEFF']) {
        expect(await service.create(ada.id, name), JSON.stringify(name)).to.deep.equal({ ok: false, problem: 'organization.name_invalid' });
      }
      const made = await service.create(ada.id, 'Cafe\u0301 Corp');
      expect(made.ok && made.organization.name).to.equal('Caf\u00E9 Corp');
    });
  });

  describe('domains', () => {
    it('refuses public suffixes, ICANN and private, and accepts a domain registered under one', async () => {
      const { admin, org } = await adminWithOrg();
      const service = server.registry.organizations.service;
      for (const domain of ['co.uk', 'github.io', 'herokuapp.com']) {
        expect(await service.addDomain(admin.id, org.id, domain), domain).to.deep.equal({ ok: false, problem: 'domain.public_suffix' });
      }
      expect(await service.addDomain(admin.id, org.id, 'acme.co.uk')).to.deep.include({ ok: true, existing: false });
    });

    it('throttles Verify now per domain and per admin: no DNS lookup, fetch or audit record while waiting', async () => {
      const { admin, org } = await adminWithOrg();
      const service = server.registry.organizations.service;
      const added = await service.addDomain(admin.id, org.id, `slow-${unique()}.test`);
      if (!added.ok) throw new Error(added.problem);
      const tries = [];
      for (let i = 0; i < 3; i++) tries.push(await service.verifyDomain(admin.id, org.id, added.domain.id));
      expect(tries.map((r) => (r.ok ? 'ok' : r.problem))).to.deep.equal(['verification.not_found', 'verification.not_found', 'verification.throttled']);
      expect((tries[2] as { retryAfterSeconds: number }).retryAfterSeconds).to.be.within(1, 2);
      const queriesBefore = dns.queries.length;
      const refused = await service.verifyDomain(admin.id, org.id, added.domain.id);
      expect(refused).to.include({ ok: false, problem: 'verification.throttled' });
      expect(dns.queries.length, 'no lookup while waiting').to.equal(queriesBefore);
      const audit = await server.registry.db.query(`SELECT 1 FROM organization_events WHERE organization_id = $1 AND action = 'domain.verification_failed'`, [org.id]);
      expect(audit.rows).to.have.length(2);
      now += 3_000;
      expect(await service.verifyDomain(admin.id, org.id, added.domain.id)).to.include({ problem: 'verification.not_found' });

      // One admin looping over many domains: ten times the allowance, then waits.
      const loop = await adminWithOrg('Loop');
      const results = [];
      for (let i = 0; i < 12; i++) {
        const domain = await service.addDomain(loop.admin.id, loop.org.id, `d${i}-${unique()}.test`);
        if (!domain.ok) throw new Error(domain.problem);
        results.push(await service.verifyDomain(loop.admin.id, loop.org.id, domain.domain.id));
      }
      expect(results.slice(0, 11).every((r) => !r.ok && r.problem === 'verification.not_found')).to.equal(true);
      expect(results[11]).to.include({ ok: false, problem: 'verification.throttled' });
    });
  });

  it('refuses invisible characters in a name an admin gives a managed account', async () => {
    const { admin, org } = await adminWithOrg();
    const result = await server.registry.organizations.managedAccounts.update(admin.id, org.id, 'acc_unknown', { name: '\u202Eevil' });
    expect(result).to.deep.equal({ ok: false, problem: 'account.name_invalid' });
  });
});
