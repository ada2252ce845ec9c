import { expect } from 'chai';
import { normalizeEmail, normalizeEmailFully } from '../../../src/identity/email-address.ts';

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

describe('normalizeEmail: the ASCII path', () => {
  it('answers exactly as the full checks do', () => {
    const local = ['a', 'Ada.Lovelace', 'x_y-z', "o'brien", 'a..b', '.a', 'a.', 'first+tag', 'x'.repeat(64), 'x'.repeat(65), 'a b', '"q"', 'ü', 'K\u212a', ''];
    const domain = ['b.co', 'Example.COM', 'b', '-example.com', 'example-.com', 'sub.example-domain.org', `${'x'.repeat(63)}.com`, `${'x'.repeat(64)}.com`, `${'x'.repeat(60)}.${'y'.repeat(60)}.${'z'.repeat(60)}.${'w'.repeat(60)}.com`, '[127.0.0.1]', 'e\u0301xample.com', 'ex_ample.com', 'a..b.com', '\u212aelvin.com', 'b.c0m', ''];
    let compared = 0;
    let accepted = 0;
    for (const l of local) {
      for (const d of domain) {
        for (const input of [`${l}@${d}`, `  ${l}@${d}\u00a0`, `${l}@@${d}`, `${l}@${d}@x.com`]) {
          expect(normalizeEmail(input), JSON.stringify(input)).to.equal(normalizeEmailFully(input));
          compared += 1;
          if (normalizeEmail(input)) accepted += 1;
        }
      }
    }
    expect(compared).to.equal(local.length * domain.length * 4);
    // Accepted and refused inputs alike were compared.
    expect(accepted).to.be.within(50, compared - 50);
  });
});
