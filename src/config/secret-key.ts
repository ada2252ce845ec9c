import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Config } from './schema.ts';

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
    if (key.length !== 32) throw new Error(`${path}: not a 32-byte base64url key; delete it or set SECRET_KEY`);
    warn(`SECRET_KEY is not set: using the development key in ${path}. Set SECRET_KEY in production.`);
    return key;
  }
  mkdirSync(config.dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(path, key.toString('base64url'), { mode: 0o600 });
  warn(`SECRET_KEY is not set: generated a development key in ${path}. Set SECRET_KEY in production.`);
  return key;
}
