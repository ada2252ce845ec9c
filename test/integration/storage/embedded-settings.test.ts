import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../../src/persistence/db.ts';
import { startCommand } from '../../../bench/soak.ts';
import { migratedDataDir } from '../../helpers/data-dir.ts';
import { serverUrl } from '../../helpers/db.ts';

/** The embedded engine's memory settings (decisions 0043, 0059); a server's are its operator's. */
describe('embedded engine settings', () => {
  it('opens with 32 MB of shared buffers, or the EMBEDDED_SHARED_BUFFERS_MB it is given', async function () {
    if (serverUrl) this.skip();
    this.timeout(120_000);
    const dir = await migratedDataDir(mkdtempSync(join(tmpdir(), 'lanyard-buffers-')));
    try {
      for (const [given, shown] of [[undefined, '32MB'], [8, '8MB']] as const) {
        const db = await openDatabase({ dataDir: dir, sharedBuffersMb: given });
        try {
          expect((await db.query<{ shared_buffers: string }>('SHOW shared_buffers')).rows[0]!.shared_buffers).to.equal(shown);
        } finally {
          await db.close();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The soak measures the documented command, so it reads package.json's start script (bench/soak.ts). */
describe('npm start, as the soak reads it', () => {
  it('takes the environment defaults and node options of package.json, and refuses another shape', () => {
    const { env, args } = startCommand('MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-131072} node --max-semi-space-size=8 --experimental-strip-types src/main.ts');
    expect(env).to.deep.equal({ MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? '131072' });
    expect(args).to.deep.equal(['--max-semi-space-size=8', '--experimental-strip-types']);
    const script = (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
    expect(startCommand(script).args).to.include('--experimental-strip-types');
    expect(() => startCommand('tsx src/main.ts')).to.throw(/start script/);
    expect(() => startCommand('node src/other.ts')).to.throw(/start script/);
  });
});
