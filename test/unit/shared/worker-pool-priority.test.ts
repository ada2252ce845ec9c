import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const moduleUrl = new URL('../../../src/shared/worker-pool-priority.ts', import.meta.url).href;

/**
 * In a process of its own (a thread's nice value cannot be lowered back without privileges, and
 * the test process's pool should stay as it is): lower the pool with `nice`, then read every
 * thread's name and nice value (field 19 of /proc/self/task/<tid>/stat, proc(5)).
 */
async function threadsAfter(nice: number, startAt = 0): Promise<{ lowered: number; threads: Array<{ name: string; nice: number }> }> {
  const script = `
    import { readdirSync, readFileSync } from 'node:fs';
    import { setPriority } from 'node:os';
    // The whole process at startAt first: each thread created from now on inherits it.
    if (${startAt} > 0) for (const tid of readdirSync('/proc/self/task')) setPriority(Number(tid), ${startAt});
    const { lowerWorkerPoolPriority } = await import(${JSON.stringify(moduleUrl)});
    const { threads: lowered } = await lowerWorkerPoolPriority(${nice});
    const threads = readdirSync('/proc/self/task').map((tid) => {
      const stat = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return { name: readFileSync('/proc/self/task/' + tid + '/comm', 'utf8').trim(), nice: Number(fields[16]) };
    });
    process.stdout.write(JSON.stringify({ lowered, threads }));
  `;
  const { stdout } = await run(process.execPath, ['--experimental-strip-types', '--no-warnings', '--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('../../..', import.meta.url)) });
  return JSON.parse(stdout) as { lowered: number; threads: Array<{ name: string; nice: number }> };
}

describe('lowering the thread pool\'s priority', function () {
  before(function () {
    if (process.platform !== 'linux') this.skip();
  });

  it('gives every libuv pool thread the nice value, and no other thread', async () => {
    const { lowered, threads } = await threadsAfter(13);
    const pool = threads.filter((t) => t.name === 'libuv-worker');
    expect(pool.length).to.be.greaterThan(0);
    expect(lowered).to.equal(pool.length);
    for (const t of pool) expect(t.nice).to.equal(13);
    // The event loop's thread (the first) and the others keep the priority the process started with.
    const base = threads[0]!.nice;
    expect(base).to.be.lessThan(13);
    expect(threads.filter((t) => t.name !== 'libuv-worker').every((t) => t.nice === base)).to.equal(true);
  });

  it('never raises a thread\'s priority: started at nice 15, the pool stays at 15', async () => {
    const { threads } = await threadsAfter(13, 15);
    expect(threads.every((t) => t.nice === 15)).to.equal(true);
  });

  it('leaves everything as it is at 0', async () => {
    const { lowered, threads } = await threadsAfter(0);
    expect(lowered).to.equal(0);
    expect(threads.every((t) => t.nice === threads[0]!.nice)).to.equal(true);
  });
});
