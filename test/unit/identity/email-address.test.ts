import { expect } from 'chai';
import { normalizeEmail } from '../../../src/identity/email-address.ts';

describe('normalizeEmail', () => {
  it('trims, lower-cases and NFC-normalises an address', () => {
    expect(normalizeEmail('  Ada.Lovelace@Example.COM ')).to.equal('ada.lovelace@example.com');
    expect(normalizeEmail('e\u0301mile@example.com')).to.equal(undefined); // local parts are ASCII
    expect(normalizeEmail('user@e\u0301xample.com')).to.equal('user@\u00e9xample.com');
  });

  it('accepts the usual shapes of real addresses', () => {
    for (const ok of ['a@b.co', 'first.last+tag@sub.example.org', "o'brien@example.ie", 'x_y-z@example-domain.com']) {
      expect(normalizeEmail(ok), ok).to.equal(ok);
    }
  });

  it('refuses what is not one plausible address', () => {
    const bad = ['', 'plain', '@example.com', 'a@', 'a@b', 'a@@b.com', 'a@b@c.com', 'a..b@example.com', '.a@example.com',
      'a@-example.com', 'a@example-.com', '"quoted"@example.com', 'a@[127.0.0.1]', `${'x'.repeat(65)}@example.com`, `a@${'x'.repeat(250)}.com`, 'a b@example.com'];
    for (const input of bad) expect(normalizeEmail(input), input).to.equal(undefined);
    expect(normalizeEmail(42)).to.equal(undefined);
    expect(normalizeEmail(['a@b.co'])).to.equal(undefined);
  });
});
