import { expect } from 'chai';
import { upkeepDue } from '../../../src/persistence/embedded-upkeep.ts';

/** autovacuum's default thresholds, as the embedded engine's upkeep applies them (decision 0064). */
describe('upkeepDue', () => {
  const table = (over: Partial<Parameters<typeof upkeepDue>[0]>) => ({ table: 't', live: 1000, dead: 0, modifiedSinceAnalyze: 0, insertedSinceVacuum: 0, ...over });

  it('vacuums past 50 + 20 % dead rows, or 1,000 + 20 % rows inserted since the last vacuum', () => {
    expect(upkeepDue(table({ dead: 250 }))).to.equal(undefined);
    expect(upkeepDue(table({ dead: 251 }))).to.equal('vacuum');
    expect(upkeepDue(table({ insertedSinceVacuum: 1200, modifiedSinceAnalyze: 0 }))).to.equal(undefined);
    expect(upkeepDue(table({ insertedSinceVacuum: 1201 }))).to.equal('vacuum');
  });

  it('analyses past 50 + 10 % rows changed since the last ANALYZE, and does nothing below', () => {
    expect(upkeepDue(table({ modifiedSinceAnalyze: 150 }))).to.equal(undefined);
    expect(upkeepDue(table({ modifiedSinceAnalyze: 151 }))).to.equal('analyze');
    expect(upkeepDue(table({ live: 0, modifiedSinceAnalyze: 51 })), 'a new table: 51 rows written').to.equal('analyze');
    expect(upkeepDue(table({ live: 0 }))).to.equal(undefined);
  });
});
