import { expect } from 'chai';
import { parseLine } from '../../../src/legacy-trello/legacy-import.ts';

const HASH = '$2b$10$akNXbQt/L4iu2ZNZF2Z1veCzA90Cp1.vvKJ9br0Zl7zs8KvS0ygx2';
const good = { id: 'm1', username: 'ada', fullName: 'Ada', passwordHash: HASH, emails: [{ address: ' Ada@Example.com ', verified: true, primary: true, lastUsedAt: '2025-03-01T10:00:00Z' }] };

describe('legacy Trello import: one line', () => {
  it('accepts a well-formed member and normalises its addresses', () => {
    const r = parseLine(JSON.stringify(good));
    expect(r.ok).to.equal(true);
    if (!r.ok) return;
    expect(r.member.emails[0]).to.deep.include({ email: 'ada@example.com', verified: true, primary: true });
    expect(r.member.emails[0]!.lastUsedAt?.toISOString()).to.equal('2025-03-01T10:00:00.000Z');
  });

  it('gives a reason for each kind of bad line', () => {
    const reason = (text: string) => { const r = parseLine(text); return r.ok ? 'ok' : r.reason; };
    expect(reason('{not json')).to.equal('invalid JSON');
    expect(reason('[1,2]')).to.equal('not a JSON object');
    expect(reason(JSON.stringify({ ...good, id: undefined }))).to.equal('missing id');
    expect(reason(JSON.stringify({ ...good, id: '' }))).to.equal('missing id');
    expect(reason(JSON.stringify({ ...good, emails: [{ address: 'not-an-address' }] }))).to.match(/^emails\.0\.address: malformed email/);
    expect(reason(JSON.stringify({ ...good, passwordHash: 'md5:5f4dcc3b5aa765d61d8327deb882cf99' }))).to.match(/unknown hash format/);
    expect(reason(JSON.stringify({ ...good, emails: [] }))).to.match(/no email address/);
    expect(reason(JSON.stringify({ ...good, emails: [{ address: 'a@b.com', lastUsedAt: 'yesterday' }] }))).to.match(/^emails\.0\.lastUsedAt/);
  });

  it('accepts a member without a password (Google only) and keeps a duplicated address once', () => {
    const r = parseLine(JSON.stringify({ ...good, passwordHash: null, google: { sub: 'g-1', email: 'ada@gmail.com' }, emails: [{ address: 'a@x.com' }, { address: 'A@x.com' }] }));
    expect(r.ok && r.member.emails.length).to.equal(1);
    expect(r.ok && r.member.googleSub).to.equal('g-1');
  });
});

describe('legacy Trello import: the hand-written check agrees with the schema', () => {
  const base = {
    id: ' m-42 ', username: ' grace ', fullName: 'Grace Hopper', passwordHash: HASH,
    emails: [
      { address: 'Grace@Example.com', verified: true, primary: true, lastUsedAt: '2025-03-01T10:00:00Z', addedAt: '2017-03-02T10:00:00.123+02:00' },
      { address: 'g2@example.org' },
    ],
    google: { sub: '108234', email: 'grace@gmail.com' },
    enterprise: { id: 'ent_42', name: 'Acme' },
  };
  type Json = Record<string, unknown>;
  const at = (obj: Json, path: string[], value: unknown): Json => {
    const copy = structuredClone(obj) as Json;
    let node = copy as Record<string, unknown>;
    for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
    if (value === undefined) delete node[path.at(-1)!];
    else node[path.at(-1)!] = value;
    return copy;
  };
  const variants: Json[] = [base];
  const values = [undefined, null, '', ' ', 'x', 'x'.repeat(64), 'x'.repeat(65), 'x'.repeat(101), 'x'.repeat(201), 'x'.repeat(256), 'x'.repeat(321), 0, 1, true, false, [], {}, ['a'],
    '2025-02-29T10:00:00Z', '2024-02-29T10:00:00Z', '2025-13-01T10:00:00Z', '2025-03-01T10:00Z', '2025-03-01 10:00:00Z', '2025-03-01T10:00:00', '2025-03-01T24:00:00Z', '2025-03-01T10:00:00.5-05:30', 'yesterday'];
  const paths = [['id'], ['username'], ['fullName'], ['passwordHash'], ['emails'], ['google'], ['enterprise'],
    ['emails', '0'], ['emails', '0', 'address'], ['emails', '0', 'verified'], ['emails', '0', 'primary'], ['emails', '0', 'lastUsedAt'], ['emails', '1', 'addedAt'],
    ['google', 'sub'], ['google', 'email'], ['enterprise', 'id'], ['enterprise', 'name'], ['extra']];
  for (const path of paths) for (const value of values) variants.push(at(base, path, value));
  variants.push({ ...base, emails: Array.from({ length: 50 }, (_, i) => ({ address: `a${i}@b.co` })) }, { ...base, emails: Array.from({ length: 51 }, (_, i) => ({ address: `a${i}@b.co` })) });

  it('gives the same member, or the same reason, for every variant of a line', () => {
    let accepted = 0;
    for (const v of variants) {
      const text = JSON.stringify(v);
      const fast = parseLine(text);
      expect(fast, text).to.deep.equal(parseLine(text, { schemaOnly: true }));
      if (fast.ok) accepted += 1;
    }
    // Both kinds were compared: many variants are still valid lines, many are not.
    expect(accepted).to.be.within(40, variants.length - 40);
  });
});
