import { expect } from 'chai';
import { IdSet } from '../../../src/legacy-trello/id-set.ts';

describe('IdSet: the member ids an import has met', () => {
  it('answers exactly, across growth of its table and buffer, for ids of any length and script', () => {
    const set = new IdSet();
    const ids = Array.from({ length: 50_000 }, (_, i) => (i % 7 === 0 ? `ü-${i}-✓` : `5f${i.toString(16).padStart(22, '0')}`));
    for (const id of ids) expect(set.addHas(id)).to.equal(false);
    expect(set.size).to.equal(ids.length);
    for (const id of ids) expect(set.addHas(id), id).to.equal(true);
    // Prefixes, extensions and near misses of known ids are new.
    for (const id of ['5f', `${ids[1]}0`, ids[1]!.slice(0, -1), '', 'x'.repeat(64)]) expect(set.addHas(id), id).to.equal(false);
    expect(set.size).to.equal(ids.length + 5);
    // Compact, growth slack included: a Set of the same strings takes 70 to 80 bytes each.
    expect(set.footprint / set.size).to.be.below(64);
  });

  it('refuses an id longer than it can hold', () => {
    expect(() => new IdSet().addHas('x'.repeat(256))).to.throw(RangeError);
  });
});
