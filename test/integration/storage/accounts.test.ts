import { expect } from 'chai';
import { testDatabase, resetDatabase } from '../../helpers/db.ts';
import { createAccountQueries } from '../../../src/persistence/queries/accounts.ts';
import { createAccountService } from '../../../src/identity/accounts.ts';
import { createPasswordHasher } from '../../../src/identity/password-hasher.ts';
import { AppError } from '../../../src/shared/errors.ts';
import { systemClock } from '../../../src/shared/clock.ts';
import { seedAccounts, seededEmail } from '../../../src/cli/seed-accounts.ts';

const OWASP = { memoryKiB: 19456, timeCost: 2, parallelism: 1 };

describe('account service', () => {
  let service: ReturnType<typeof createAccountService>;
  beforeEach(async () => {
    await resetDatabase();
    service = createAccountService({ accounts: createAccountQueries(await testDatabase()), hasher: createPasswordHasher(OWASP, 8), clock: systemClock });
  });

  it('creates an account with an opaque id, one normalised email and an argon2id hash', async () => {
    const account = await service.create({ email: ' Ada@Example.com', password: 'pw with spaces', name: 'Ada' });
    expect(account.id).to.match(/^acc_[A-Za-z0-9_-]{22}$/);
    expect(account.email).to.equal('ada@example.com');
    expect(account.password_hash).to.match(/^\$argon2id\$/);
    expect(account.status).to.equal('active');
  });

  it('refuses a second account for the same address in any case, even under a race', async () => {
    await service.create({ email: 'one@example.com', password: 'x'.repeat(10) });
    const again = await service.create({ email: 'ONE@example.com', password: 'x'.repeat(10) }).catch((e: unknown) => e);
    expect(again).to.be.instanceOf(AppError).and.have.property('code', 'account.email_taken');
    const race = await Promise.allSettled([1, 2, 3].map(() => service.create({ email: 'race@example.com', password: 'x'.repeat(10) })));
    expect(race.filter((r) => r.status === 'fulfilled')).to.have.length(1);
    for (const r of race.filter((x) => x.status === 'rejected')) expect((r as PromiseRejectedResult).reason.code).to.equal('account.email_taken');
  });

  it('authenticates by email and password, and says the same for unknown and wrong', async () => {
    const account = await service.create({ email: 'auth@example.com', password: 'right password' });
    const ok = await service.authenticate('AUTH@example.com', 'right password');
    expect(ok.ok && ok.account.id).to.equal(account.id);
    // What people see (`code`) is the same; the audit trail gets the reason and the account.
    expect(await service.authenticate('auth@example.com', 'wrong password')).to.deep.equal({ ok: false, code: 'login.invalid_credentials', accountId: account.id, reason: 'wrong_password' });
    expect(await service.authenticate('nobody@example.com', 'right password')).to.deep.equal({ ok: false, code: 'login.invalid_credentials', reason: 'unknown_account' });
    expect(await service.authenticate('not an email', 'x')).to.deep.equal({ ok: false, code: 'login.invalid_credentials', reason: 'unknown_account' });
  });

  it('re-hashes a password on login when the argon2 parameters were raised', async () => {
    const account = await service.create({ email: 'rehash@example.com', password: 'upgrade me please' });
    const db = await testDatabase();
    const stronger = createAccountService({ accounts: createAccountQueries(db), hasher: createPasswordHasher({ ...OWASP, timeCost: 3 }, 8), clock: systemClock });
    const result = await stronger.authenticate('rehash@example.com', 'upgrade me please');
    expect(result.ok).to.equal(true);
    const { rows } = await db.query<{ password_hash: string }>('SELECT password_hash FROM accounts WHERE id = $1', [account.id]);
    expect(rows[0]!.password_hash).to.contain('t=3').and.not.equal(account.password_hash);
    expect((await stronger.authenticate('rehash@example.com', 'upgrade me please')).ok).to.equal(true);
  });
});

describe('seeding accounts in bulk (seed accounts)', () => {
  beforeEach(resetDatabase);

  it('inserts set-based in batches, realistic unique addresses, one shared hash that signs in, and analyses the table', async () => {
    const db = await testDatabase();
    const accounts = createAccountQueries(db);
    const hasher = createPasswordHasher(OWASP, 8);
    const service = createAccountService({ accounts, hasher, clock: systemClock });
    const passwordHash = await hasher.hash('seeded password 1');
    const batches: number[] = [];
    const first = await seedAccounts({ db, accounts }, { count: 25, passwordHash, batch: 10, onBatch: (p) => batches.push(p.done) });
    expect(first.inserted).to.equal(25);
    expect(batches).to.deep.equal([10, 20, 25]);
    // A second run overlapping the first: the addresses already taken are skipped.
    expect((await seedAccounts({ db, accounts }, { count: 10, from: 21, passwordHash, batch: 10 })).inserted).to.equal(5);

    const { rows } = await db.query<{ n: number; hashes: number; domains: number; reltuples: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT password_hash)::int AS hashes, count(DISTINCT split_part(email, '@', 2))::int AS domains,
              (SELECT reltuples::int FROM pg_class WHERE oid = 'accounts'::regclass) AS reltuples
       FROM accounts WHERE email_verified AND status = 'active'`,
    );
    expect(rows[0]).to.deep.equal({ n: 30, hashes: 1, domains: 20, reltuples: 30 });
    const k = 17;
    expect(seededEmail(k)).to.match(/^[a-z]+\.[a-z-]+\.17@[a-z.-]+$/);
    const account = await accounts.findByEmail(seededEmail(k));
    expect(account?.id).to.match(/^acc_[A-Za-z0-9_-]{22}$/);
    expect(account?.name?.toLowerCase().replace(' ', '.')).to.equal(seededEmail(k).split('.17@')[0]);
    const signedIn = await service.authenticate(seededEmail(k), 'seeded password 1');
    expect(signedIn.ok && signedIn.account.id).to.equal(account?.id);
    expect((await service.authenticate(seededEmail(k), 'another password')).ok).to.equal(false);
  });
});
