import { expect } from 'chai';
import { createTokenAccounts } from '../../../src/oidc/token-accounts.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('token accounts (the account row reused by the token endpoints for a moment)', () => {
  it('reads an account once within the bound, and again after it', async () => {
    let reads = 0;
    const cache = createTokenAccounts({ load: async (id: string) => { reads += 1; return { id, reads }; }, ttlMs: 60 });
    expect(await cache.get('a')).to.deep.equal({ id: 'a', reads: 1 });
    expect(await cache.get('a')).to.deep.equal({ id: 'a', reads: 1 });
    expect(reads).to.equal(1);
    await sleep(80);
    expect(await cache.get('a')).to.deep.equal({ id: 'a', reads: 2 });
  });

  it('reads again at once after a write in this process (invalidate)', async () => {
    let status = 'active';
    const cache = createTokenAccounts({ load: async () => ({ status }), ttlMs: 60_000 });
    expect(await cache.get('a')).to.deep.equal({ status: 'active' });
    status = 'deactivated';
    cache.invalidate();
    expect(await cache.get('a')).to.deep.equal({ status: 'deactivated' });
  });

  it('does not keep a row read while a write was under way', async () => {
    let status = 'active';
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    let reads = 0;
    const cache = createTokenAccounts({
      load: async () => { reads += 1; const seen = status; if (reads === 1) await gate; return { status: seen }; },
      ttlMs: 60_000,
    });
    const stale = cache.get('a'); // reads the old row…
    status = 'deactivated';
    cache.invalidate(); // …while the change is written
    release();
    expect(await stale).to.deep.equal({ status: 'active' });
    expect(await cache.get('a')).to.deep.equal({ status: 'deactivated' });
    expect(reads).to.equal(2);
  });

  it('never remembers an absent account, and reads every time with a bound of 0', async () => {
    let reads = 0;
    const none = createTokenAccounts({ load: async () => { reads += 1; return undefined; }, ttlMs: 60_000 });
    await none.get('a');
    await none.get('a');
    expect(reads).to.equal(2);
    const off = createTokenAccounts({ load: async () => { reads += 1; return {}; }, ttlMs: 0 });
    await off.get('a');
    await off.get('a');
    expect(reads).to.equal(4);
  });
});
