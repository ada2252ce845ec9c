import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Config } from './schema.ts';
import { ConfigError } from './load.ts';
import { SealedSecretError, type SecretBox } from '../shared/crypto.ts';

/**
 * The key that seals secrets at rest. Production must configure SECRET_KEY (the schema refuses to
 * start without it). Development and tests without one get a key generated once and kept in
 * DATA_DIR/secret-key, next to the embedded database it protects, and a loud warning.
 */
export function resolveSecretKey(config: Config, warn: (message: string) => void): Buffer {
  if (config.secretKey) return config.secretKey;
  const path = join(config.dataDir, 'secret-key');
  if (existsSync(path)) {
    const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64url');
    if (key.length !== 32) throw new ConfigError([`SECRET_KEY: the development key in ${path} is not 32 base64url bytes; delete the file or set SECRET_KEY`]);
    warn(`SECRET_KEY is not set: using the development key in ${path}. Set SECRET_KEY in production.`);
    return key;
  }
  mkdirSync(config.dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(path, key.toString('base64url'), { mode: 0o600 });
  warn(`SECRET_KEY is not set: generated a development key in ${path}. Set SECRET_KEY in production.`);
  return key;
}

/**
 * SECRET_KEY (with SECRET_KEYS_PREVIOUS) does not open what this database holds sealed: the wrong
 * key, or a rotation whose former key was left out. Start-up stops with this one line.
 */
export class SecretKeyMismatchError extends Error {
  constructor(detail: string) {
    super(`SECRET_KEY: does not open this database's secrets (${detail})`);
    this.name = 'SecretKeyMismatchError';
  }
}

/**
 * Runs start-up work that opens sealed values (signing keys, cookie keys, derived keys); a value
 * that does not open becomes a SecretKeyMismatchError naming key ids, never keys.
 */
export async function openingSecrets<T>(box: SecretBox, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof SealedSecretError)) throw err;
    const configured = `SECRET_KEY is key ${box.keyId}${box.previousKeyIds.length ? `, SECRET_KEYS_PREVIOUS ${box.previousKeyIds.join(', ')}` : ''}`;
    const detail = err.reason === 'unknown_key' ? `they are sealed with key ${err.keyId}; ${configured}`
      : err.reason === 'mismatch' ? `a sealed value does not open with any configured key; ${configured}`
        : 'a sealed value is not in a known format';
    throw new SecretKeyMismatchError(detail);
  }
}
