import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../../src/config/load.ts';
import { resolveSecretKey } from '../../../src/config/secret-key.ts';

describe('resolveSecretKey (development key file)', () => {
  it('reports a damaged development key file as SECRET_KEY, in one line', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lanyard-key-'));
    try {
      writeFileSync(join(dataDir, 'secret-key'), 'too-short');
      const err = (() => { try { resolveSecretKey(loadConfig({ DATA_DIR: dataDir }), () => {}); } catch (e) { return e; } })();
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as ConfigError).problems).to.deep.equal([`SECRET_KEY: the development key in ${join(dataDir, 'secret-key')} is not 32 base64url bytes; delete the file or set SECRET_KEY`]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
