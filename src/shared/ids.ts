import { randomBytes } from 'node:crypto';

/**
 * Opaque, unguessable identifiers with a readable prefix (`acc_…`, `key_…`). 128 bits of
 * randomness, so an id is never reused and reveals neither order nor count.
 */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(16).toString('base64url')}`;
}

/** A random secret for humans or machines, base64url. */
export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
