import { expect } from 'chai';
import { chooseEmail, kindChanges, looksPersonal, pickableEmails, rankEmails } from '../../../src/legacy-trello/email-choice.ts';
import type { TrelloEmail } from '../../../src/persistence/queries/trello-members.ts';

const e = (email: string, o: Partial<TrelloEmail> = {}): TrelloEmail => ({ email, verified: false, is_primary: false, last_used_at: null, added_at: null, ...o });
const day = (n: number) => new Date(Date.UTC(2024, 0, n));

describe('choosing the one address a linked account keeps', () => {
  it('prefers a verified address over an unverified primary', () => {
    expect(chooseEmail([e('primary@x.com', { is_primary: true }), e('verified@x.com', { verified: true })])?.email).to.equal('verified@x.com');
  });

  it('among verified ones prefers the primary', () => {
    expect(chooseEmail([e('a@x.com', { verified: true, last_used_at: day(9) }), e('p@x.com', { verified: true, is_primary: true })])?.email).to.equal('p@x.com');
  });

  it('then the most recently used to log in, then the oldest', () => {
    const recent = [e('old@x.com', { verified: true, last_used_at: day(1) }), e('new@x.com', { verified: true, last_used_at: day(5) })];
    expect(chooseEmail(recent)?.email).to.equal('new@x.com');
    const oldest = [e('later@x.com', { verified: true, added_at: day(3) }), e('first@x.com', { verified: true, added_at: day(2) }), e('undated@x.com', { verified: true })];
    expect(chooseEmail(oldest)?.email).to.equal('first@x.com');
  });

  it('ranks deterministically whatever the input order, and lists only verified ones to pick from', () => {
    const list = [e('b@x.com', { verified: true }), e('a@x.com', { verified: true }), e('c@x.com')];
    expect(rankEmails(list).map((x) => x.email)).to.deep.equal(['a@x.com', 'b@x.com', 'c@x.com']);
    expect(rankEmails([...list].reverse()).map((x) => x.email)).to.deep.equal(['a@x.com', 'b@x.com', 'c@x.com']);
    expect(pickableEmails(list).map((x) => x.email)).to.deep.equal(['a@x.com', 'b@x.com']);
  });

  it('falls back to an unverified address when none is verified, and to nothing for no address', () => {
    expect(chooseEmail([e('only@x.com')])?.email).to.equal('only@x.com');
    expect(chooseEmail([])).to.equal(undefined);
  });

  it('notices when the choice swaps a personal address for a company one or the reverse', () => {
    expect(looksPersonal('ada@gmail.com')).to.equal(true);
    expect(looksPersonal('ada@acme.com')).to.equal(false);
    const list = [e('ada@acme.com', { verified: true, is_primary: true }), e('ada@gmail.com', { verified: true, last_used_at: day(9) })];
    expect(kindChanges(chooseEmail(list)!, list)).to.equal(true);
    const same = [e('ada@acme.com', { verified: true, is_primary: true, last_used_at: day(9) }), e('ada@gmail.com', { verified: true })];
    expect(kindChanges(chooseEmail(same)!, same)).to.equal(false);
  });
});
