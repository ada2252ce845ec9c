import { expect } from 'chai';
import { unavailableReason } from '../../../src/persistence/db.ts';

describe('unavailableReason (which failures mean the database is unavailable)', () => {
  const cases: [string, unknown, string | undefined][] = [
    ['connection refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), 'connection refused'],
    ['connection reset', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'ECONNRESET'],
    ['dropped connection', new Error('Connection terminated unexpectedly'), 'Connection terminated unexpectedly'],
    ['pool checkout bound', new Error('timeout exceeded when trying to connect'), 'timeout exceeded when trying to connect'],
    ['client read bound', new Error('Query read timeout'), 'Query read timeout'],
    ['statement_timeout', Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }), 'statement timeout'],
    ['administrator shutdown', Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), '57P01 terminating connection due to administrator command'],
    ['connection exception class', Object.assign(new Error('connection failure'), { code: '08006' }), '08006 connection failure'],
    ['too many connections', Object.assign(new Error('sorry, too many clients already'), { code: '53300' }), '53300 sorry, too many clients already'],
    ['unique violation (a bug or a conflict, not an outage)', Object.assign(new Error('duplicate key'), { code: '23505' }), undefined],
    ['syntax error', Object.assign(new Error('syntax error at or near'), { code: '42601' }), undefined],
    ['plain error', new Error('boom'), undefined],
    ['not an error', 'text', undefined],
  ];
  for (const [name, err, reason] of cases) {
    it(`${name}: ${reason ?? 'not an outage'}`, () => {
      expect(unavailableReason(err)).to.equal(reason);
    });
  }
});
