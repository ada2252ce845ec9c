import bcrypt from 'bcryptjs';
import { expect } from 'chai';
import { createHashQueue, createPasswordHasher } from '../../../src/identity/password-hasher.ts';
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

  it('compares Trello bcrypt hashes in a worker thread, a missing hash against a decoy, and never refuses that second check', async () => {
    const hasher = createPasswordHasher(OWASP, 1);
    const hash = bcrypt.hashSync('trello secret', 4);
    // The one place is taken: a first check would be refused, a second one waits its turn.
    const occupying = hasher.hash('occupying');
    expect(hasher.full()).to.equal(true);
    const [right, wrong, none, malformed] = await Promise.all([
      hasher.compareLegacy(hash, 'trello secret'),
      hasher.compareLegacy(hash, 'not it'),
      hasher.compareLegacy(undefined, 'trello secret'),
      hasher.compareLegacy('$2b$10$short', 'trello secret'),
    ]);
    await occupying;
    expect([right, wrong, none, malformed]).to.deep.equal([true, false, false, false]);
    expect(await hasher.rehash('after a proven password')).to.match(/^\$argon2id\$/);
  });

  it('refuses a Trello check that is its step’s first hash when the queue is full (decision 0063)', async () => {
    const hasher = createPasswordHasher(OWASP, 1);
    const hash = bcrypt.hashSync('trello secret', 4);
    const occupying = hasher.hash('occupying');
    const refused = await hasher.compareLegacy(hash, 'trello secret', { first: true }).then(() => undefined, (err: unknown) => err);
    expect(refused).to.be.instanceOf(AppError).and.have.property('code', 'login.busy');
    await occupying;
    expect(await hasher.compareLegacy(hash, 'trello secret', { first: true }), 'admitted once there is room').to.equal(true);
  });

  describe('its queue', () => {
    /** Work that ends when the test says so, recording when it started. */
    function gate(started: string[], name: string) {
      let open!: () => void;
      const done = new Promise<void>((resolve) => { open = resolve; });
      return { open, work: async () => { started.push(name); await done; return name; } };
    }
    const settle = () => new Promise((resolve) => setImmediate(resolve));

    it('runs at most `threads` hashes at once; the others wait and start in arrival order as slots free', async () => {
      const queue = createHashQueue(2, 8);
      const started: string[] = [];
      const jobs = ['a', 'b', 'c', 'd'].map((name) => gate(started, name));
      const results = jobs.map((job) => queue.run(job.work));
      await settle();
      expect(started).to.deep.equal(['a', 'b']);
      expect(queue.load).to.deep.equal({ running: 2, waiting: 2 });
      jobs[1]!.open();
      await settle();
      expect(started).to.deep.equal(['a', 'b', 'c']);
      jobs[0]!.open();
      await settle();
      expect(started).to.deep.equal(['a', 'b', 'c', 'd']);
      jobs[2]!.open();
      jobs[3]!.open();
      expect(await Promise.all(results)).to.deep.equal(['a', 'b', 'c', 'd']);
      expect(queue.load).to.deep.equal({ running: 0, waiting: 0 });
    });

    it('counts waiting hashes in its bound: beyond it, login.busy at once', async () => {
      const queue = createHashQueue(1, 2);
      const started: string[] = [];
      const jobs = ['a', 'b'].map((name) => gate(started, name));
      const admitted = jobs.map((job) => queue.run(job.work));
      const refused = await queue.run(async () => 'c').then(() => undefined, (err: unknown) => err);
      expect(refused).to.be.instanceOf(AppError).and.have.property('code', 'login.busy');
      for (const job of jobs) job.open();
      expect(await Promise.all(admitted)).to.deep.equal(['a', 'b']);
      // Room again once they are done.
      expect(await queue.run(async () => 'd')).to.equal('d');
    });

    it('lets an admitted (second) hash wait beyond the bound instead of refusing it', async () => {
      const queue = createHashQueue(1, 1);
      const started: string[] = [];
      const first = gate(started, 'a');
      const admitted = queue.run(first.work);
      const second = queue.run(async () => 'b', true);
      await settle();
      expect(started).to.deep.equal(['a']);
      expect(queue.load).to.deep.equal({ running: 1, waiting: 1 });
      first.open();
      expect(await Promise.all([admitted, second])).to.deep.equal(['a', 'b']);
    });

    it('frees the slot of a hash that failed', async () => {
      const queue = createHashQueue(1, 4);
      await queue.run(async () => { throw new Error('boom'); }).catch(() => undefined);
      expect(queue.load).to.deep.equal({ running: 0, waiting: 0 });
      expect(await queue.run(async () => 'next')).to.equal('next');
    });
  });
});
