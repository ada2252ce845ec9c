import { expect } from 'chai';
import { releaseClaims, releasedClaims, SCOPE_CLAIMS } from '../../../src/identity/claims-release.ts';
import { VISIBILITIES, PROFILE_FIELDS } from '../../../src/identity/profile.ts';
import type { AccountRow } from '../../../src/persistence/queries/accounts.ts';

const account = (overrides: Partial<AccountRow> = {}): AccountRow => ({
  id: 'acc_0123456789abcdefghijkl', email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace', nickname: 'ada', picture: null,
  locale: null, zoneinfo: 'Europe/London', status: 'active', password_hash: null, password_changed_at: null, job_title: 'Analyst',
  department: null, organization_name: 'Analytical Co', location: 'London', profile_visibility: {}, closed_at: null, delete_after: null,
  erased_at: null, two_step_required: false, created_at: new Date(0), updated_at: new Date(1_700_000_000_000), ...overrides,
});
const pictureUrl = 'https://id.example.com/avatars/acc_0123456789abcdefghijkl.svg';
const listed = (release: ReturnType<typeof releaseClaims>) => release.items.flatMap((item) => item.details.map((d) => d.claim));

describe('releaseClaims (what the consent page lists and the tokens carry)', () => {
  it('lists every claim it releases, and releases every claim it lists but those the engine adds (amr)', () => {
    const release = releaseClaims(account(), { scopes: ['openid', 'profile', 'email', 'offline_access'], pictureUrl });
    expect(listed(release).filter((c) => c !== 'amr').sort()).to.deep.equal(Object.keys(release.claims).sort());
    expect(release.claims).to.deep.equal({
      sub: 'acc_0123456789abcdefghijkl', email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace', nickname: 'ada',
      picture: pictureUrl, zoneinfo: 'Europe/London', updated_at: 1_700_000_000, job_title: 'Analyst', organization: 'Analytical Co', location: 'London',
    });
    expect(release.items.map((i) => i.text)).to.deep.equal(['Know who you are when you log in', 'See your profile', 'See your email address', 'Keep access to this information when you’re not using it']);
  });

  it('ignores visibility: the grant is the person’s decision for that client', () => {
    for (const v of VISIBILITIES) {
      const hidden = account({ profile_visibility: Object.fromEntries(PROFILE_FIELDS.map((f) => [f, v])) });
      expect(releaseClaims(hidden, { scopes: ['openid', 'email'], pictureUrl }).claims).to.include({ email: 'ada@example.com', email_verified: true });
    }
  });

  it('shows the values people recognise, and leaves out fields without one', () => {
    const release = releaseClaims(account({ email_verified: false }), { scopes: ['email', 'profile'], pictureUrl });
    const details = release.items.flatMap((i) => i.details);
    expect(details.find((d) => d.claim === 'email')?.shown).to.equal('ada@example.com');
    expect(details.find((d) => d.claim === 'email_verified')?.shown).to.equal('not verified');
    expect(details.find((d) => d.claim === 'picture')?.shown, 'a link is not shown as text').to.equal(undefined);
    expect(listed(release)).not.to.include.members(['department', 'locale']);
    expect(release.claims).not.to.have.any.keys('department', 'locale');
  });

  it('releases claims asked one by one, once, and never a rejected or unknown one', () => {
    const release = releaseClaims(account(), { scopes: ['openid', 'email'], claims: ['email', 'name', 'password_hash', 'job_title'], rejected: ['job_title'], pictureUrl });
    expect(release.items.at(-1)).to.deep.include({ scope: 'claims', text: 'See these details' });
    expect(release.items.at(-1)!.details.map((d) => d.claim)).to.deep.equal(['name']);
    expect(Object.keys(release.claims).sort()).to.deep.equal(['email', 'email_verified', 'name', 'sub']);
  });

  it('releases the Trello member only when given one (the Trello client)', () => {
    expect(releaseClaims(account(), { scopes: ['openid'], pictureUrl }).claims).not.to.have.property('trello_member_id');
    expect(releaseClaims(account(), { scopes: ['openid'], pictureUrl, trelloMemberId: 'm1' }).claims).to.include({ trello_member_id: 'm1' });
  });

  it('covers every claim of every scope with a label', () => {
    const everything = releaseClaims(account({ department: 'Engines', locale: 'en-GB' }), { scopes: Object.keys(SCOPE_CLAIMS), pictureUrl, trelloMemberId: 'm1' });
    expect(listed(everything).sort()).to.deep.equal(Object.values(SCOPE_CLAIMS).flat().sort());
    for (const detail of everything.items.flatMap((i) => i.details)) expect(detail.label).to.be.a('string').and.not.equal('');
  });

  it('gives the token side (releasedClaims) exactly the claims the consent page is built from, in the same order', () => {
    const scopeSets = [[], ['openid'], ['openid', 'email'], ['openid', 'email', 'profile'], ['profile', 'openid', 'email', 'offline_access'], ['email', 'email'], ['organizations:manage', 'openid'], ['', 'unknown', 'openid']];
    const claimLists = [undefined, [], ['email', 'name', 'password_hash', 'job_title'], ['amr', 'sub', 'picture', 'constructor', '__proto__', 'trello_member_id'], ['updated_at', 'updated_at', 'organization']];
    const rejectedLists = [undefined, [], ['job_title'], ['email', 'picture', 'sub', 'amr']];
    const accounts = [account(), account({ email_verified: false, name: null, picture: 'https://cdn.example.com/p.png', organization_name: null, location: '' }), account({ department: 'Engines', locale: 'en-GB' })];
    let compared = 0;
    for (const acc of accounts) for (const scopes of scopeSets) for (const claims of claimLists) for (const rejected of rejectedLists) for (const trelloMemberId of [undefined, 'm1']) {
      const request = { scopes, pictureUrl, trelloMemberId, ...(claims ? { claims } : {}), ...(rejected ? { rejected } : {}) };
      expect(Object.entries(releasedClaims(acc, request)), JSON.stringify(request)).to.deep.equal(Object.entries(releaseClaims(acc, request).claims));
      compared += 1;
    }
    expect(compared).to.equal(accounts.length * scopeSets.length * claimLists.length * rejectedLists.length * 2);
  });
});
