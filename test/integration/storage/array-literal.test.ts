import { expect } from 'chai';
import { testDatabase } from '../../helpers/db.ts';
import { booleanArray, textArray } from '../../../src/persistence/array-literal.ts';

describe('array literals built for bulk parameters', () => {
  it('round-trips every awkward text through text[] exactly, NULL included', async () => {
    const db = await testDatabase();
    const values = ['plain', '', 'NULL', 'null', 'a"quote', 'back\\slash', '\\"both"\\', '{braces}', 'comma,here', ' spaced ', 'tab\tnew\nline', 'Grüße 👋', "o'brien", null];
    const { rows } = await db.query<{ v: (string | null)[] }>('SELECT $1::text[] AS v', [textArray(values)]);
    expect(rows[0]!.v).to.deep.equal(values);
  });

  it('gives booleans and ISO timestamps their values', async () => {
    const db = await testDatabase();
    const at = new Date('2025-03-01T10:00:00.123Z');
    const { rows } = await db.query<{ b: boolean[]; t: (Date | null)[] }>('SELECT $1::boolean[] AS b, $2::timestamptz[] AS t', [booleanArray([true, false, true]), textArray([at.toISOString(), null])]);
    expect(rows[0]!.b).to.deep.equal([true, false, true]);
    expect(rows[0]!.t.map((d) => d?.toISOString() ?? null)).to.deep.equal([at.toISOString(), null]);
  });

  it('gives an empty array for no elements', async () => {
    const db = await testDatabase();
    const { rows } = await db.query<{ n: number }>('SELECT cardinality($1::text[]) AS n', [textArray([])]);
    expect(rows[0]!.n).to.equal(0);
  });
});
