import { expect } from 'chai';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount } from '../../helpers/factories.ts';
import { createRegistrationService } from '../../../src/identity/registration.ts';
import { createSignupFlowQueries } from '../../../src/persistence/queries/signup-flows.ts';
import type { Decision, DecisionInput } from '../../../src/policy/policy.ts';

/**
 * Sign-up asks the decision point (`sign_up`) before mailing a code and again before creating
 * the account. Today its answer follows from whether the address has an account (refused: the
 * owner is told instead); companies whose domain signs in through their own identity provider
 * (issue 13) will answer `use_connector` for a bare address. No state of today's data makes it
 * say so, so this test gives the service the real decision point with one rule added for a
 * domain, and checks the service acts on the answer.
 */
describe('sign-up consults the decision point', () => {
  let server: TestServer;
  let ssoDomain = false;

  beforeEach(async () => {
    await resetDatabase();
    ssoDomain = false;
    server = await startTestServer();
  });
  afterEach(async () => server.close());

  function registration() {
    const r = server.registry;
    return createRegistrationService({
      db: r.db,
      accounts: r.accountQueries,
      flows: createSignupFlowQueries(r.db),
      hasher: r.hasher,
      policy: r.passwordPolicy,
      outbox: r.mail.outbox,
      clock: r.clock,
      issuer: r.config.issuer,
      codeKey: r.codeKey,
      ttlSeconds: 900,
      decisions: {
        subjectForEmail: (email) => r.policy.subjectForEmail(email),
        addressSubject: (email) => r.policy.addressSubject(email),
        decide: (input: DecisionInput): Decision => (ssoDomain && input.subject.kind === 'address' && input.subject.email.endsWith('@acme.example')
          ? { outcome: 'use_connector', connector: 'acme-oidc', manager: 'Acme' }
          : r.policy.decide(input)),
      },
    });
  }
  const outbox = async (email: string) => (await server.registry.db.query<{ template: string }>('SELECT template FROM mail_outbox WHERE recipient = $1 ORDER BY created_at', [email])).rows.map((r) => r.template);

  it('mails a code when the decision point allows, the "already registered" notice for a taken address, nothing when it sends the person elsewhere', async () => {
    const service = registration();
    await service.start('uid-free', 'new@example.com');
    expect(await outbox('new@example.com')).to.deep.equal(['verify-email']);
    const taken = await createAccount(server.registry, { email: 'taken@example.com' });
    await service.start('uid-taken', taken.email);
    expect(await outbox(taken.email)).to.deep.equal(['already-registered']);

    await service.start('uid-acme-1', 'person@acme.example');
    expect(await outbox('person@acme.example'), 'allowed before the rule').to.deep.equal(['verify-email']);
    ssoDomain = true;
    await service.start('uid-acme-2', 'other@acme.example');
    expect(await outbox('other@acme.example'), 'no code: the company signs its people in').to.deep.equal([]);
    expect(await service.current('uid-acme-2')).to.equal(undefined);
  });

  it('asks again right before creating the account', async () => {
    const service = registration();
    await service.start('uid-acme', 'late@acme.example');
    await server.registry.db.query('UPDATE signup_flows SET verified_at = now() WHERE interaction_uid = $1', ['uid-acme']);
    ssoDomain = true;
    const refused = await service.complete('uid-acme', { name: 'Late Person', password: 'a long enough passphrase' });
    expect(refused).to.deep.equal({ ok: false, problem: 'policy.method_not_allowed' });
    expect(await server.registry.accounts.findByEmail('late@acme.example')).to.equal(undefined);
    ssoDomain = false;
    const created = await service.complete('uid-acme', { name: 'Late Person', password: 'a long enough passphrase' });
    expect(created.ok).to.equal(true);
  });
});
