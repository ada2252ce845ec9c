import { createCipheriv, createDecipheriv, createHash, createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto';

/** SHA-256 of a string, base64url. Used to store bearer values (tokens, codes, session ids) hashed. */
export function sha256(value: string): string {
  // The one-shot digest: a third of createHash's cost, and the token endpoints hash every id they store or look up.
  return hash('sha256', value, 'base64url');
}

export function hmac(key: Buffer, value: string): string {
  return createHmac('sha256', key).update(value).digest('base64url');
}

/** Compares two strings in time independent of where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  // Compare against itself on length mismatch so the time taken does not reveal the length check.
  if (left.length !== right.length) {
    timingSafeEqual(left, left);
    return false;
  }
  return timingSafeEqual(left, right);
}

/**
 * Why a sealed value did not open: sealed with a key that is not configured (`unknown_key`),
 * not opening with the key it names or with any configured key (`mismatch`: another key, a
 * tampered value, or a value moved to another row), or not a sealed value at all (`malformed`).
 * Carries key ids only, never key material.
 */
export class SealedSecretError extends Error {
  readonly reason: 'unknown_key' | 'mismatch' | 'malformed';
  readonly keyId: string | undefined;
  constructor(reason: SealedSecretError['reason'], keyId?: string) {
    super(reason === 'unknown_key' ? `sealed with key ${keyId}, which is not configured`
      : reason === 'mismatch' ? 'does not open with any configured key'
        : 'unrecognised sealed secret');
    this.name = 'SealedSecretError';
    this.reason = reason;
    this.keyId = keyId;
  }
}

/**
 * The public id of a secret key: 64 bits of SHA-256 over a label and the key, base64url. It names
 * the key in sealed values and messages; it reveals nothing usable about the key.
 */
export function secretKeyId(key: Buffer): string {
  return createHash('sha256').update('lanyard:secret-key-id:').update(key).digest().subarray(0, 8).toString('base64url');
}

/**
 * Envelope for secrets at rest: AES-256-GCM with a random 96-bit nonce (NIST SP 800-38D).
 * Format: `v2.<key id>.<nonce>.<ciphertext>.<tag>`, base64url parts; values sealed before keys
 * could rotate read `v1.<nonce>.<ciphertext>.<tag>` and still open. `context` is bound as
 * associated data so a ciphertext moved to another row or column does not decrypt.
 *
 * Key rotation (docs/decisions/0017-secret-key-rotation.md): the current key seals; it and the
 * previous keys open. The key id picks the key; a v1 value is tried with each key in turn (GCM's
 * tag tells the right one).
 */
export interface SecretBox {
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): string;
  /** Id of the key that seals. */
  readonly keyId: string;
  /** Ids of the keys accepted for opening only. */
  readonly previousKeyIds: readonly string[];
  /** The prefix of every value sealed with the current key (`secrets reseal` skips those). */
  readonly currentPrefix: string;
}

function decrypt(key: Buffer, nonce: string, ciphertext: string, tag: string, context: string): string {
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(nonce, 'base64url'));
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
}

export function createSecretBox(key: Buffer, previous: readonly Buffer[] = []): SecretBox {
  for (const k of [key, ...previous]) if (k.length !== 32) throw new TypeError('secret key must be 32 bytes');
  const keyId = secretKeyId(key);
  const keys = new Map<string, Buffer>([[keyId, key]]);
  for (const k of previous) if (!keys.has(secretKeyId(k))) keys.set(secretKeyId(k), k);
  const attempt = (k: Buffer, nonce: string, ciphertext: string, tag: string, context: string) => {
    try {
      return decrypt(k, nonce, ciphertext, tag, context);
    } catch {
      return undefined;
    }
  };
  return {
    keyId,
    previousKeyIds: [...keys.keys()].filter((id) => id !== keyId),
    currentPrefix: `v2.${keyId}.`,
    seal(plaintext, context) {
      const nonce = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      cipher.setAAD(Buffer.from(context));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return ['v2', keyId, ...[nonce, ciphertext, cipher.getAuthTag()].map((p) => p.toString('base64url'))].join('.');
    },
    open(sealed, context) {
      const parts = sealed.split('.');
      if (parts[0] === 'v2' && parts.length === 5 && parts[2] && parts[4]) {
        const [, kid, nonce, ciphertext, tag] = parts as [string, string, string, string, string];
        const k = keys.get(kid);
        if (!k) throw new SealedSecretError('unknown_key', kid);
        const opened = attempt(k, nonce, ciphertext, tag, context);
        if (opened === undefined) throw new SealedSecretError('mismatch', kid);
        return opened;
      }
      if (parts[0] === 'v1' && parts.length === 4 && parts[1] && parts[3]) {
        const [, nonce, ciphertext, tag] = parts as [string, string, string, string];
        for (const k of keys.values()) {
          const opened = attempt(k, nonce, ciphertext, tag, context);
          if (opened !== undefined) return opened;
        }
        throw new SealedSecretError('mismatch');
      }
      throw new SealedSecretError('malformed');
    },
  };
}
