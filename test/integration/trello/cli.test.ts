import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openDatabase, type Database } from '../../../src/persistence/db.ts';
import { cliInProcess, spawnCli } from '../../helpers/cli.ts';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import { migratedDataDir } from '../../helpers/data-dir.ts';
import { TRELLO_HASH } from '../../helpers/trello.ts';
import supertest from 'supertest';
import { loadConfig } from '../../../src/config/load.ts';
import { createRegistry } from '../../../src/registry.ts';
import { createApp } from '../../../src/app.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { EXIT_CONFLICTS } from '../../../src/cli/trello.ts';

/**
 * `trello import` and `trello migrate` as an operator runs them: through the CLI's entry in this
 * process on the run's database, and as a real process on an embedded database of its own where
 * the process matters (killed mid-migration).
 */
describe('command-line interface: trello import and migrate', function () {
  this.timeout(120_000);
  let dir: string;
  let env: Record<string, string>;
  let db: Database;
  const cli = (args: string[], cliEnv: Record<string, string>, input?: string) => cliInProcess(args, cliEnv, { input, db });

  beforeEach(async () => {
    await resetDatabase();
    db = await testDatabase();
    dir = mkdtempSync(join(tmpdir(), 'lanyard-trello-cli-'));
    env = { DATA_DIR: join(dir, 'data'), SECRET_KEY: randomBytes(32).toString('base64url') };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  // The commands sealed secrets into the run's database with this file's own SECRET_KEY: the next
  // file's server would refuse to start on them (the key check of decision 0017).
  after(() => resetDatabase());

  const member = (i: number, extra: Record<string, unknown> = {}) => JSON.stringify({
    id: `m${String(i).padStart(6, '0')}`,
    username: `user${i}`,
    passwordHash: TRELLO_HASH,
    emails: [{ address: `member${i}@example.com`, verified: true, primary: true }, { address: `old${i}@example.com`, verified: true }],
    ...extra,
  });

  function writeFile(lines: string[]): string {
    const file = join(dir, 'members.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  }

  it('leaves the embedded engine’s tables vacuumed and analysed after a bulk import (decision 0064)', async function () {
    if (db.engine !== 'pglite') this.skip(); // a server's autovacuum does it
    const stats = async () => (await db.query<{ inserted: string; vacuumed: boolean; analyzed: boolean }>(
      "SELECT n_ins_since_vacuum AS inserted, last_vacuum IS NOT NULL AS vacuumed, last_analyze IS NOT NULL AS analyzed FROM pg_stat_user_tables WHERE relname = 'trello_members'",
    )).rows[0]!;
    // Past autovacuum's insert threshold (1,000 + 20 %): the server's first sweeper round would
    // otherwise vacuum the whole table, holding the one connection while it does.
    const lines = Array.from({ length: 3_000 }, (_, i) => member(i + 1));
    const result = await cli(['trello', 'import', writeFile(lines)], env);
    expect(result.code, result.stderr).to.equal(0);
    expect(await stats()).to.deep.equal({ inserted: '0', vacuumed: true, analyzed: true });
  });

  it('imports, reporting each bad line, and is idempotent when run again', async () => {
    const file = writeFile([member(1), 'not json', member(2), JSON.stringify({ id: 'm9', username: 'x', passwordHash: 'sha1$abc', emails: [{ address: 'a@b.co' }] }), member(3)]);
    const first = await cli(['trello', 'import', file], env);
    expect(first.code).to.equal(1); // some lines were skipped
    expect(first.stderr).to.contain('line 2: invalid JSON (skipped)');
    expect(first.stderr).to.contain('line 4: passwordHash: unknown hash format');
    expect(first.stdout).to.contain('read 5 lines: 3 new, 0 updated (0 already linked: names only), 2 skipped, 0 flagged');
    const second = await cli(['trello', 'import', file], env);
    expect(second.stdout).to.contain('0 new, 3 updated');
  });

  it('migrates in bulk after a dry run that lists every plan and conflict', async () => {
    const file = writeFile([member(1), member(2)]);
    await cli(['trello', 'import', file], env);
    await cli(['accounts', 'create', '--email', 'member2@example.com'], env, 'a good long password\n');
    const dry = await cli(['trello', 'migrate', '--dry-run'], env);
    expect(dry.code, dry.stderr).to.equal(EXIT_CONFLICTS);
    expect(dry.stdout).to.contain('would link m000001 as member1@example.com, retiring old1@example.com');
    expect(dry.stderr).to.contain('conflict m000002 member2@example.com: the address belongs to another account');
    expect(dry.stdout).to.contain('dry run: 2 unlinked examined, 1 would be linked, 1 conflicts');
    expect(dry.stderr).to.contain('progress: 2/2 examined, 1 would be linked');
    expect(dry.stderr).to.contain('1 member would be left unlinked by conflicts (listed above): exit status 3');
    const run = await cli(['trello', 'migrate'], env);
    expect(run.stdout).to.contain('2 unlinked examined, 1 linked, 1 conflicts');
    // Conflicts left behind are not a success: a documented status, and the count.
    expect(run.code).to.equal(EXIT_CONFLICTS);
    expect(run.stderr).to.contain('1 member were left unlinked by conflicts');
    const again = await cli(['trello', 'migrate'], env);
    expect(again.stdout).to.contain('1 unlinked examined, 0 linked, 1 conflicts');
    expect(again.code).to.equal(EXIT_CONFLICTS);
  });

  it('reports a flagged line without aborting, and prints progress lines with rate and ETA when the output is not a terminal', async () => {
    const lines = Array.from({ length: 1200 }, (_, i) => member(i, i === 700 ? { google: { sub: 'same' } } : i === 701 ? { google: { sub: 'same' } } : {}));
    const result = await cli(['trello', 'import', writeFile(lines)], env);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stderr).to.contain(`line 702: google.sub is already member m000700's: imported without it (flagged)`);
    expect(result.stdout).to.contain('read 1200 lines: 1200 new, 0 updated (0 already linked: names only), 0 skipped, 1 flagged');
    // Standard output is not a terminal here, as in a log or a cron job.
    expect(result.stdout).to.match(/^progress: \d+ lines, \d+ lines\/s, \d+%, ETA (\d+h)?(\d+m)?\d+s?$/m);
  });

  it('only queues the set-password mail, with links from ISSUER, for the server\'s worker to deliver', async () => {
    // A development setup: no SMTP_URL, a mail worker polling, the CLI on another port.
    const devEnv = { ...env, ISSUER: 'https://id.example.test', PORT: '4999', MAIL_POLL_SECONDS: '1', DEV_MAILBOX: 'true' };
    await cli(['trello', 'import', writeFile([member(1)])], devEnv);
    const run = await cli(['trello', 'migrate'], devEnv);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.contain("1 set-password message queued (links to https://id.example.test); 1 message waits in the outbox for the server's mail worker");

    // The server, started afterwards on the same data, delivers it to its development mailbox.
    const config = loadConfig({ NODE_ENV: 'test', ...devEnv });
    const registry = await createRegistry(config, { logger: createLogger('silent'), db });
    try {
      expect(await registry.mail.queries.countWaiting()).to.equal(1);
      expect(await registry.mail.delivery.deliverDue()).to.equal(1);
      const page = await supertest(createApp(registry).callback()).get('/dev/mailbox');
      expect(page.status).to.equal(200);
      expect(page.text).to.contain('member1@example.com');
      const [mail] = registry.mail.devMailbox!.messages();
      expect(mail!.text).to.match(/https:\/\/id\.example\.test\/password\/reset\?token=[\w-]{20,}/);
      expect(mail!.text).not.to.contain('4999');
    } finally {
      await registry.close();
    }
  });

  it('refuses to queue set-password mail outside tests without ISSUER, whose default is its own PORT', async () => {
    // A development setup as in the walkthrough: the server on PORT 3950, the command run with
    // DATA_DIR and no ISSUER — the links would have pointed to the command's own default port.
    const devEnv = { ...env, NODE_ENV: 'development' };
    await cli(['trello', 'import', writeFile([member(1)])], devEnv);
    const refused = await cli(['trello', 'migrate'], devEnv);
    expect(refused.code).to.equal(1);
    expect(refused.stderr.trim().split('\n')).to.deep.equal([
      "ISSUER: not set; trello migrate builds the set-password links of its mail from it: set it to the server's public URL (without it the links would point to http://localhost:3000)",
    ]);
    // Nothing was linked nor queued; the dry run, which queues nothing, still runs.
    const dry = await cli(['trello', 'migrate', '--dry-run'], devEnv);
    expect(dry.code, dry.stderr).to.equal(0);
    expect(dry.stdout).to.contain('dry run: 1 unlinked examined, 1 would be linked, 0 conflicts');
    const run = await cli(['trello', 'migrate'], { ...devEnv, ISSUER: 'http://localhost:3950' });
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.contain('1 set-password message queued (links to http://localhost:3950); 1 message waits in the outbox');
    const help = await cli(['trello', '--help'], env);
    expect(help.stdout).to.contain("ISSUER, which must be the server's public URL");
  });

  it('leaves every member either fully linked or untouched when the process is killed mid-migration', async () => {
    // An embedded database of its own in DATA_DIR, which the process below opens too.
    await migratedDataDir(env.DATA_DIR);
    const lines = Array.from({ length: 1500 }, (_, i) => member(i));
    const imported = await cliInProcess(['trello', 'import', writeFile(lines)], env);
    expect(imported.code, imported.stderr).to.equal(0);
    const child = spawnCli(['trello', 'migrate'], env);
    const closed = new Promise((resolve) => child.on('close', resolve));
    // Kill it without warning as soon as it reports its first finished batch.
    await new Promise<void>((resolve) => child.stderr!.on('data', (d: Buffer) => { if (d.toString().includes('progress:')) resolve(); }));
    child.kill('SIGKILL');
    await closed;

    const data = await openDatabase({ dataDir: env.DATA_DIR });
    try {
      const { rows } = await data.query<{ member_id: string; linked_account_id: string | null; account: string | null; retired: number; events: number }>(
        `SELECT m.member_id, m.linked_account_id,
                (SELECT a.id FROM accounts a WHERE lower(a.email) = 'member' || ltrim(substr(m.member_id, 2), '0') || '@example.com') AS account,
                (SELECT count(*)::int FROM retired_emails r WHERE r.account_id = m.linked_account_id) AS retired,
                (SELECT count(*)::int FROM trello_link_events e WHERE e.member_id = m.member_id) AS events
         FROM trello_members m WHERE m.member_id <> 'm000000'`,
      );
      const linked = rows.filter((r) => r.linked_account_id);
      for (const r of rows) {
        if (r.linked_account_id) expect({ account: r.account, retired: r.retired, events: r.events }).to.deep.equal({ account: r.linked_account_id, retired: 1, events: 1 });
        else expect({ account: r.account, events: r.events }).to.deep.equal({ account: null, events: 0 });
      }
      expect(rows).to.have.length(1499);
      // Killed part-way: the point of the test is a run that was interrupted.
      expect(linked.length, 'linked before the kill').to.be.within(1, 1498);
    } finally {
      await data.close();
    }
    // And a new run finishes the job.
    const rest = await cliInProcess(['trello', 'migrate'], env);
    expect(rest.code, rest.stderr).to.equal(0);
    expect(rest.stdout).to.match(/, 0 conflicts$/m);
  });
});
