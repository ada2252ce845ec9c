import { expect } from 'chai';
import { createCipheriv, randomBytes } from 'node:crypto';
import { constantTimeEqual, createSecretBox, secretKeyId, SealedSecretError, sha256 } from '../../../src/shared/crypto.ts';

/** A value in the format written before keys could rotate: `v1.<nonce>.<ciphertext>.<tag>`. */
function sealV1(key: Buffer, plaintext: string, context: string): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(context));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', nonce, ciphertext, cipher.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
}

describe('secret box (AES-256-GCM)', () => {
  const box = createSecretBox(randomBytes(32));

  it('opens what it sealed, and seals the same text differently each time', () => {
    const a = box.seal('private key', 'signing_keys:k1');
    const b = box.seal('private key', 'signing_keys:k1');
    expect(a).not.to.equal(b);
    expect(a).not.to.contain('private key');
    expect(box.open(a, 'signing_keys:k1')).to.equal('private key');
  });

  it('refuses a ciphertext moved to another context, tampered with, or sealed under another key', () => {
    const sealed = box.seal('secret', 'clients:a');
    expect(() => box.open(sealed, 'clients:b')).to.throw();
    const parts = sealed.split('.');
    parts[2] = Buffer.from('tampered').toString('base64url');
    expect(() => box.open(parts.join('.'), 'clients:a')).to.throw();
    expect(() => createSecretBox(randomBytes(32)).open(sealed, 'clients:a')).to.throw();
    expect(() => box.open('not-sealed', 'clients:a')).to.throw();
  });

  it('refuses keys that are not 32 bytes', () => {
    expect(() => createSecretBox(randomBytes(16))).to.throw(TypeError);
    expect(() => createSecretBox(randomBytes(32), [randomBytes(31)])).to.throw(TypeError);
  });

  it('names the sealing key in what it seals, by an id that is not the key', () => {
    const key = randomBytes(32);
    const sealed = createSecretBox(key).seal('secret', 'clients:a');
    expect(sealed.split('.').slice(0, 2)).to.deep.equal(['v2', secretKeyId(key)]);
    expect(secretKeyId(key)).to.have.length(11).and.not.equal(key.toString('base64url').slice(0, 11));
  });

  it('after a rotation, opens with the previous keys and seals with the new one only', () => {
    const old = randomBytes(32);
    const current = randomBytes(32);
    const before = createSecretBox(old).seal('totp secret', 'totp_factors:acc_1');
    const legacy = sealV1(old, 'client secret', 'clients:jira');
    const rotated = createSecretBox(current, [old]);
    expect(rotated.open(before, 'totp_factors:acc_1')).to.equal('totp secret');
    expect(rotated.open(legacy, 'clients:jira')).to.equal('client secret');
    expect(rotated.seal('new', 'clients:x').startsWith(rotated.currentPrefix)).to.equal(true);
    expect(rotated.currentPrefix).to.equal(`v2.${secretKeyId(current)}.`);
    expect(rotated.previousKeyIds).to.deep.equal([secretKeyId(old)]);
    // Without the previous key the old values name a key that is not configured.
    const err = (() => { try { createSecretBox(current).open(before, 'totp_factors:acc_1'); } catch (e) { return e; } })();
    expect(err).to.be.instanceOf(SealedSecretError);
    expect(err).to.include({ reason: 'unknown_key', keyId: secretKeyId(old) });
    expect(() => createSecretBox(current).open(legacy, 'clients:jira')).to.throw(SealedSecretError, 'does not open with any configured key');
  });

  it('still opens values sealed before keys had ids (v1) with the current key', () => {
    const key = randomBytes(32);
    expect(createSecretBox(key).open(sealV1(key, 'cookie keys', 'cookie_keys'), 'cookie_keys')).to.equal('cookie keys');
  });
});

describe('constantTimeEqual and sha256', () => {
  it('compares strings of equal and unequal length', () => {
    expect(constantTimeEqual('abc', 'abc')).to.equal(true);
    expect(constantTimeEqual('abc', 'abd')).to.equal(false);
    expect(constantTimeEqual('abc', 'abcd')).to.equal(false);
  });
  it('hashes to base64url SHA-256', () => {
    expect(sha256('abc')).to.equal('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
  });
});
