import { expect } from 'chai';
import { createSweeper } from '../../../src/shared/sweeper.ts';
import { captureLogs } from '../../helpers/log-capture.ts';

describe('background sweeper', () => {
  it('runs its tasks in order, each once a round', async () => {
    const ran: string[] = [];
    const logs = captureLogs();
    const sweeper = createSweeper({
      logger: logs.logger,
      tasks: ['payloads', 'throttles', 'closures'].map((name) => ({ name, run: async () => { ran.push(name); } })),
    });
    await sweeper.sweepOnce();
    await sweeper.sweepOnce();
    expect(ran).to.deep.equal(['payloads', 'throttles', 'closures', 'payloads', 'throttles', 'closures']);
    expect(logs.atLeast(40)).to.deep.equal([]);
  });

  it('turns a failing task into one warn line naming it, goes on with the next task, and tries again next round', async () => {
    const ran: string[] = [];
    const logs = captureLogs();
    let failures = 1;
    const sweeper = createSweeper({
      logger: logs.logger,
      tasks: [
        { name: 'payloads', run: async () => { ran.push('payloads'); if (failures-- > 0) throw new Error('database unavailable'); } },
        { name: 'closures', run: async () => { ran.push('closures'); } },
      ],
    });
    await sweeper.sweepOnce();
    const warnings = logs.atLeast(40);
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.include({ level: 40, task: 'payloads', msg: 'sweeping expired rows failed' });
    expect(ran).to.deep.equal(['payloads', 'closures']);
    await sweeper.sweepOnce();
    expect(ran).to.deep.equal(['payloads', 'closures', 'payloads', 'closures']);
    expect(logs.atLeast(40)).to.have.length(1);
  });

  it('does not start a second round while one is running', async () => {
    let release!: () => void;
    let runs = 0;
    const sweeper = createSweeper({
      logger: captureLogs().logger,
      tasks: [{ name: 'slow', run: () => { runs += 1; return new Promise<void>((resolve) => { release = resolve; }); } }],
    });
    const first = sweeper.sweepOnce();
    const second = sweeper.sweepOnce();
    expect(runs).to.equal(1);
    release();
    await Promise.all([first, second]);
    const third = sweeper.sweepOnce();
    expect(runs, 'a new round once the first ended').to.equal(2);
    release();
    await third;
  });
});
