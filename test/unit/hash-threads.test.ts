import { expect } from 'chai';
import { hashThreads } from '../../src/registry.ts';

/** How many password hashes run at once (decisions 0051, 0056). */
describe('hashThreads', () => {
  it('is one per CPU and one more, leaving one thread of libuv’s pool free', () => {
    expect(hashThreads({ passwordHashThreads: 0, threadPoolSize: 4 }, 2)).to.equal(3);
    expect(hashThreads({ passwordHashThreads: 0, threadPoolSize: 4 }, 1)).to.equal(2);
    expect(hashThreads({ passwordHashThreads: 0, threadPoolSize: 4 }, 16)).to.equal(3);
    expect(hashThreads({ passwordHashThreads: 0, threadPoolSize: 18 }, 16)).to.equal(17);
    expect(hashThreads({ passwordHashThreads: 0, threadPoolSize: 17 }, 16)).to.equal(16);
  });

  it('is at least one, however small the pool', () => {
    expect(hashThreads({ passwordHashThreads: 0, threadPoolSize: 1 }, 8)).to.equal(1);
  });

  it('is what PASSWORD_HASH_THREADS says when set', () => {
    expect(hashThreads({ passwordHashThreads: 6, threadPoolSize: 8 }, 2)).to.equal(6);
  });
});
