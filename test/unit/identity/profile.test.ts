import { expect } from 'chai';
import { canSee, initialsAvatar, initialsOf, profileUpdate, visibilityOf, visibleProfile, DEFAULT_VISIBILITY } from '../../../src/identity/profile.ts';
import type { AccountRow } from '../../../src/persistence/queries/accounts.ts';

const account = (overrides: Partial<AccountRow> = {}): AccountRow => ({
  id: 'acc_0123456789abcdefghijkl', email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace', nickname: 'ada', picture: null,
  locale: null, zoneinfo: 'Europe/London', status: 'active', password_hash: null, password_changed_at: null, job_title: 'Analyst',
  department: 'Engines', organization_name: 'Analytical Co', location: 'London', profile_visibility: {}, closed_at: null, delete_after: null,
  erased_at: null, two_step_required: false, created_at: new Date(0), updated_at: new Date(0), ...overrides,
});

describe('profile visibility', () => {
  it('defaults the email to Only you and names to Anyone', () => {
    expect(DEFAULT_VISIBILITY.email).to.equal('private');
    expect(visibilityOf(account())).to.include({ email: 'private', name: 'anyone', job_title: 'organization' });
  });

  it('lets the person see everything, the organization its fields, anyone only public ones', () => {
    expect(canSee('self', 'private')).to.equal(true);
    expect(canSee('organization', 'organization')).to.equal(true);
    expect(canSee('organization', 'private')).to.equal(false);
    expect(canSee('anyone', 'organization')).to.equal(false);
    expect(canSee('anyone', 'anyone')).to.equal(true);
  });

  it('withholds hidden fields instead of blanking them', () => {
    const visible = visibleProfile(account(), 'anyone');
    expect(visible).to.deep.equal({ name: 'Ada Lovelace', nickname: 'ada' });
    expect(visible).not.to.have.property('email');
    expect(visibleProfile(account(), 'self')).to.include({ email: 'ada@example.com', job_title: 'Analyst' });
    expect(visibleProfile(account({ profile_visibility: { email: 'anyone', name: 'private' } }), 'anyone')).to.deep.equal({ nickname: 'ada', email: 'ada@example.com' });
  });

  it('ignores stored visibilities it does not know', () => {
    expect(visibilityOf(account({ profile_visibility: { email: 'everyone' } })).email).to.equal('private');
  });

  it('makes initials avatars', () => {
    expect(initialsOf('grace brewster hopper', 'g@example.com')).to.equal('GB');
    expect(initialsOf(null, 'zed@example.com')).to.equal('Z');
    const svg = initialsAvatar(account({ name: '<script>' }));
    expect(svg).to.match(/^<svg /).and.not.contain('<script>');
  });
});

describe('profile update: names shown to others', () => {
  it('refuses invisible and reordering characters in every text field, and a name of only those', () => {
    for (const field of ['name', 'nickname', 'job_title', 'department', 'organization_name', 'location']) {
      for (const value of ['\u200B\u200B', 'Ada \u202Eecalevol', 'Ada\u2066 x\u2069', 'Ada\u0007']) {
        expect(profileUpdate.safeParse({ [field]: value }).success, `${field}: ${JSON.stringify(value)}`).to.equal(false);
      }
    }
  });

  it('stores names in NFC, trimmed, and still clears a field with empty text', () => {
    expect(profileUpdate.parse({ name: '  Zoe\u0308  Lovelace ' })).to.deep.equal({ name: 'Zo\u00EB Lovelace' });
    expect(profileUpdate.parse({ nickname: '   ' })).to.deep.equal({ nickname: '' });
    expect(profileUpdate.parse({ name: null })).to.deep.equal({ name: null });
    expect(profileUpdate.safeParse({ name: 'x'.repeat(201) }).success).to.equal(false);
  });
});
