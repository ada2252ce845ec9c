import { expect } from 'chai';
import { displayTime } from '../../../src/shared/display-time.ts';

describe('displayTime', () => {
  it('writes an instant to the minute in UTC, whatever it is given', () => {
    const instant = Date.UTC(2026, 10, 29, 22, 7, 59, 999);
    expect(displayTime(new Date(instant))).to.equal('2026-11-29 22:07 UTC');
    expect(displayTime(instant)).to.equal('2026-11-29 22:07 UTC');
    expect(displayTime('2026-11-29T23:07:59+01:00')).to.equal('2026-11-29 22:07 UTC');
  });

  it('writes nothing for an invalid date instead of throwing', () => {
    expect(displayTime('not a date')).to.equal('');
    expect(displayTime(Number.NaN)).to.equal('');
  });
});
