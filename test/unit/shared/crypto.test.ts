import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { constantTimeEqual, createSecretBox, sha256 } from '../../../src/shared/crypto.ts';

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
