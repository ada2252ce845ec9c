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
