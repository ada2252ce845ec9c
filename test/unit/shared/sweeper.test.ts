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

  it('turns a failing task into one warn line naming it, ends the round, and tries again next round', async () => {
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
    expect(ran).to.deep.equal(['payloads']);
    await sweeper.sweepOnce();
    expect(ran).to.deep.equal(['payloads', 'payloads', 'closures']);
  });
});
