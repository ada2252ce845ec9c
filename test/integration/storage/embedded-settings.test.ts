import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../../src/persistence/db.ts';
import { startCommand } from '../../../bench/start-command.ts';
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

/** The embedded engine's statements: prepared by name when they repeat, one connection held by a transaction (decision 0062). */
describe('embedded engine statements', () => {
  it('prepares a statement with parameters under a name the second time it is seen, never a one-off, and a transaction holds the one connection', async function () {
    if (serverUrl) this.skip();
    this.timeout(60_000);
    const db = await openDatabase({});
    try {
      const prepared = async () => (await db.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements')).rows.map((r) => r.statement);
      const repeated = 'SELECT $1::int + 1 AS n';
      expect((await db.query<{ n: number }>(repeated, [1])).rows[0]!.n).to.equal(2);
      expect(await prepared(), 'seen once: not prepared').to.not.include(repeated);
      expect((await db.query<{ n: number }>(repeated, [41])).rows[0]!.n).to.equal(42);
      expect(await prepared(), 'seen twice: prepared by name').to.include(repeated);
      expect((await db.query<{ n: number }>(repeated, [99])).rows[0]!.n, 'and answers for new values').to.equal(100);
      await db.query('SELECT $1::text AS once', ['x']);
      expect(await prepared()).to.not.include('SELECT $1::text AS once');

      // A statement from outside waits for the open transaction's commit, and sees its row.
      await db.exec('CREATE TABLE held_connection (v int)');
      let open!: () => void;
      const gate = new Promise<void>((resolve) => { open = resolve; });
      const tx = db.transaction(async (t) => {
        await t.query('INSERT INTO held_connection VALUES ($1)', [1]);
        await gate;
      });
      let answered = false;
      const outside = db.query<{ n: number }>('SELECT count(*)::int AS n FROM held_connection').then((r) => { answered = true; return r; });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(answered, 'waits while the transaction holds the connection').to.equal(false);
      open();
      await tx;
      expect((await outside).rows[0]!.n).to.equal(1);

      // A transaction that throws is rolled back, and the connection is free again.
      const failed = await db.transaction(async (t) => {
        await t.query('INSERT INTO held_connection VALUES ($1)', [2]);
        throw new Error('abandoned');
      }).then(() => undefined, (err: Error) => err.message);
      expect(failed).to.equal('abandoned');
      expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM held_connection')).rows[0]!.n).to.equal(1);
    } finally {
      await db.close();
    }
  });
});

/** The soak and the import bench measure the documented commands, so they read package.json's scripts (bench/start-command.ts). */
describe('npm start and npm run cli, as the benchmarks read them', () => {
  it('takes the environment defaults and node options of package.json, and refuses another shape', () => {
    const { env, args } = startCommand('MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-131072} node --max-semi-space-size=8 --experimental-strip-types src/main.ts');
    expect(env).to.deep.equal({ MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? '131072' });
    expect(args).to.deep.equal(['--max-semi-space-size=8', '--experimental-strip-types']);
    const script = (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
    expect(startCommand(script).args).to.include('--experimental-strip-types');
    // npm run cli runs with the same memory settings (decision 0067); the import bench reads them from there.
    const cli = (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8')) as { scripts: { cli: string } }).scripts.cli;
    expect(startCommand(cli, 'src/cli/main.ts')).to.deep.equal({ env: { MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? '131072' }, args: ['--experimental-strip-types', '--max-semi-space-size=8'] });
    expect(() => startCommand(cli)).to.throw(/start script/);
    expect(() => startCommand('tsx src/main.ts')).to.throw(/start script/);
    expect(() => startCommand('node src/other.ts')).to.throw(/start script/);
  });
});
