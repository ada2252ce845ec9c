import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { threadCpuByKind, threadCpuSince } from '../../../bench/scenarios.ts';

/**
 * The login benchmark splits a login's CPU by thread (bench/scenarios.ts): the figures in
 * docs/benchmarks.md are only as good as this reading of /proc/self/task.
 */
describe('bench: CPU by thread', function () {
  before(function () {
    if (!existsSync('/proc/self/task')) this.skip();
  });

  it('puts work done on the event loop under main, and nothing under a kind that did none', () => {
    const before = threadCpuByKind();
    const started = process.threadCpuUsage();
    // Busy for 200 ms of this thread's CPU: the kernel counts in 10 ms ticks.
    let spins = 0;
    const spent = () => { const { user, system } = process.threadCpuUsage(started); return user + system; };
    while (spent() < 200_000) spins += 1;
    const used = threadCpuSince(before)!;
    expect(spins).to.be.greaterThan(0);
    expect(used.main).to.be.within(150, 400);
    for (const kind of ['v8', 'pool', 'workers', 'other'] as const) expect(used[kind], kind).to.be.at.least(0).and.below(used.main);
  });

  it('answers undefined for a missing starting point rather than a made-up difference', () => {
    expect(threadCpuSince(undefined)).to.equal(undefined);
  });
});
