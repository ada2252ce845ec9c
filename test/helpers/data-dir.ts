import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/persistence/db.ts';
import { migrate } from '../../src/persistence/migrate.ts';

/**
 * A DATA_DIR (`dir`, or a new temporary one) holding an embedded database with every migration applied, for the tests that
 * hand a data directory to a process of their own (the server, a CLI command). Creating the
 * database files on disk (PGlite's initdb) costs about ten seconds of CPU; it is done once per
 * test process, into a template that each call copies (the copy is a closed database's files,
 * as a backup of a stopped server would be). A test about a new, empty data directory makes its
 * own with mkdtemp instead.
 */
let template: Promise<string> | undefined;

export async function migratedDataDir(dir = mkdtempSync(join(tmpdir(), 'lanyard-data-'))): Promise<string> {
  template ??= (async () => {
    const templateDir = mkdtempSync(join(tmpdir(), 'lanyard-data-template-'));
    process.once('exit', () => rmSync(templateDir, { recursive: true, force: true }));
    const db = await openDatabase({ dataDir: templateDir });
    try {
      await migrate(db);
    } finally {
      await db.close();
    }
    return templateDir;
  })();
  const source = await template;
  cpSync(join(source, 'pglite'), join(dir, 'pglite'), { recursive: true });
  return dir;
}
