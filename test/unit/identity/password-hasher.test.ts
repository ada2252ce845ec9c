import { expect } from 'chai';
import { createPasswordHasher } from '../../../src/identity/password-hasher.ts';
import { AppError } from '../../../src/shared/errors.ts';

const OWASP = { memoryKiB: 19456, timeCost: 2, parallelism: 1 };

describe('password hasher (argon2id)', () => {
  it('hashes with argon2id at the configured parameters and verifies', async () => {
    const hasher = createPasswordHasher(OWASP, 8);
    const hash = await hasher.hash('a long passphrase');
    expect(hash).to.match(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
    expect(await hasher.verify(hash, 'a long passphrase')).to.deep.equal({ ok: true, needsRehash: false });
    expect(await hasher.verify(hash, 'another passphrase')).to.deep.equal({ ok: false, needsRehash: false });
  });

  it('asks for a rehash when the parameters were raised since the hash was made', async () => {
    const old = await createPasswordHasher(OWASP, 8).hash('pw-to-upgrade');
    const stronger = createPasswordHasher({ ...OWASP, timeCost: 3 }, 8);
    expect(await stronger.verify(old, 'pw-to-upgrade')).to.deep.equal({ ok: true, needsRehash: true });
  });

  it('checks a decoy for a missing or foreign hash and always says no', async () => {
    const hasher = createPasswordHasher(OWASP, 8);
    expect(await hasher.verify(undefined, 'anything')).to.deep.equal({ ok: false, needsRehash: false });
    expect(await hasher.verify('$2b$10$abcdefghijklmnopqrstuu', 'anything')).to.deep.equal({ ok: false, needsRehash: false });
  });

  it('refuses work beyond its queue bound with login.busy instead of queueing forever', async () => {
    const hasher = createPasswordHasher(OWASP, 2);
    const results = await Promise.allSettled([1, 2, 3, 4].map((i) => hasher.hash(`pw-${i}`)));
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused).to.have.length(2);
    for (const r of refused) expect((r as PromiseRejectedResult).reason).to.be.instanceOf(AppError).and.have.property('code', 'login.busy');
  });
});
