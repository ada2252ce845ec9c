import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openDatabase, type Database } from '../../../src/persistence/db.ts';
import { startSmtp } from '../../helpers/smtp.ts';
import { cli as cliProcess, cliInProcess } from '../../helpers/cli.ts';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';

/**
 * The commands run through the CLI's entry inside the test process on the run's database (either
 * engine); a few run as real processes on an embedded database of their own, for what only a
 * process shows: the exit status the shell sees, the migrations of a new data directory, and the
 * embedded database's one-process lock.
 */
describe('command-line interface (npm run cli)', function () {
  // A real process opens the embedded database (a few seconds each on a busy machine): a budget, not a speed check.
  this.timeout(180_000);
  let dataDir: string;
  let env: Record<string, string>;
  let db: Database;
  const cli = (args: string[], cliEnv: Record<string, string>, input?: string) => cliInProcess(args, cliEnv, { input, db });

  before(async () => {
    await resetDatabase();
    db = await testDatabase();
    dataDir = mkdtempSync(join(tmpdir(), 'lanyard-cli-'));
    env = { DATA_DIR: dataDir, SECRET_KEY: randomBytes(32).toString('base64url') };
  });
  after(async () => {
    rmSync(dataDir, { recursive: true, force: true });
    // The commands sealed secrets into the run's database with this file's own SECRET_KEY: the next
    // file's server would refuse to start on them (the key check of decision 0017).
    await resetDatabase();
  });

  it('migrates a new data directory, and a second run is a no-op', async () => {
    const first = await cliProcess(['migrate'], env);
    expect(first.code, first.stderr).to.equal(0);
    expect(first.stdout).to.match(/applied: 0001_foundation/);
    // In this process, on the same data directory (no database passed in).
    const second = await cliInProcess(['migrate', '--status'], env);
    expect(second.code, second.stderr).to.equal(0);
    expect(second.stdout).to.contain('up to date');
    const third = await cliInProcess(['migrate'], env);
    expect(third.stdout).to.contain('up to date: nothing to apply');
  });

  it('creates, lists, updates and deletes clients', async () => {
    const created = await cli(['clients', 'create', '--id', 'jira', '--kind', 'web', '--name', 'Jira', '--redirect-uri', 'https://jira.example.com/cb', '--first-party'], env);
    expect(created.code, created.stderr).to.equal(0);
    const secret = /client_secret (\S+)/.exec(created.stdout)?.[1];
    expect(secret).to.be.a('string').with.length.greaterThan(30);

    const native = await cli(['clients', 'create', '--id', 'trello-mobile', '--kind', 'native', '--name', 'Trello', '--redirect-uri', 'com.lanyard.trello:/cb'], env);
    expect(native.code, native.stderr).to.equal(0);
    expect(native.stdout).to.contain('public client');

    const duplicate = await cli(['clients', 'create', '--id', 'jira', '--kind', 'web', '--name', 'Again', '--redirect-uri', 'https://x.example.com/cb'], env);
    expect(duplicate.code).to.equal(1);
    expect(duplicate.stderr).to.contain('already exists');

    const invalid = await cli(['clients', 'create', '--id', 'bad', '--kind', 'web', '--name', 'Bad', '--redirect-uri', 'not a url'], env);
    expect(invalid.code).to.equal(1);
    expect(invalid.stderr).to.contain('client.invalid_metadata');

    const rotated = await cli(['clients', 'update', 'jira', '--rotate-secret', '--name', 'Jira Cloud'], env);
    expect(rotated.code, rotated.stderr).to.equal(0);
    expect(/client_secret (\S+)/.exec(rotated.stdout)?.[1]).to.be.a('string').and.not.equal(secret);

    const listed = await cli(['clients', 'list'], env);
    expect(listed.stdout).to.match(/^jira\tweb\tfirst-party\tJira Cloud\thttps:\/\/jira\.example\.com\/cb$/m);
    expect(listed.stdout).to.match(/^trello-mobile\tnative\tthird-party/m);
    expect(listed.stdout).not.to.contain(secret!);

    const deleted = await cli(['clients', 'delete', 'jira'], env);
    expect(deleted.code).to.equal(0);
    expect((await cli(['clients', 'list'], env)).stdout).not.to.match(/^jira\t/m);
  });

  it('rotates signing keys and lists them', async () => {
    const rotated = await cli(['keys', 'rotate'], env);
    expect(rotated.code, rotated.stderr).to.equal(0);
    const listed = await cli(['keys', 'list'], env);
    const lines = listed.stdout.trim().split('\n');
    expect(lines).to.have.length(4);
    expect(lines.filter((l) => l.includes('unpublished at'))).to.have.length(2);
  });

  it('creates an account with a password read from standard input', async () => {
    const created = await cli(['accounts', 'create', '--email', 'Admin@Example.com', '--name', 'Admin'], env, 'a good long password\n');
    expect(created.code, created.stderr).to.equal(0);
    expect(created.stdout).to.match(/created acc_\S+ admin@example\.com/);
    const short = await cli(['accounts', 'create', '--email', 'b@example.com'], env, 'short\n');
    expect(short.code).to.equal(2);
  });

  it('seeds accounts in bulk with one password read from standard input', async () => {
    const seeded = await cli(['seed', 'accounts', '--count', '12'], env, 'a seeded password\n');
    expect(seeded.code, seeded.stderr).to.equal(0);
    expect(seeded.stdout).to.match(/^created 12 accounts in [\d.]+ s \(0 addresses already taken\); one password hash for all; accounts analysed$/m);
    const again = await cli(['seed', 'accounts', '--count', '4', '--from', '11'], env, 'a seeded password\n');
    expect(again.stdout).to.contain('created 2 accounts');
    expect((await cli(['seed', 'accounts'], env, 'a seeded password\n')).code, 'no --count').to.equal(2);
    const production = await cli(['seed', 'accounts', '--count', '3'], { ...env, NODE_ENV: 'production', ISSUER: 'https://id.example.com', SMTP_URL: 'smtp://127.0.0.1:1' }, 'a seeded password\n');
    expect(production.code).to.equal(2);
    expect(production.stderr).to.contain('seed accounts is refused when NODE_ENV=production');
    const { rows } = await db.query<{ n: number; hashes: number }>(`SELECT count(*)::int AS n, count(DISTINCT password_hash)::int AS hashes FROM accounts WHERE email LIKE '%.%.%@%' AND email <> 'admin@example.com'`);
    // One hash per run (each run hashes the password once, with its own salt).
    expect(rows[0]).to.deep.equal({ n: 14, hashes: 2 });
  });

  it('requires two-step verification for an account, and stops requiring it', async () => {
    const on = await cli(['accounts', 'require-two-step', '--email', 'admin@example.com'], env);
    expect(on.code, on.stderr).to.equal(0);
    expect(on.stdout).to.contain('admin@example.com: two-step verification required from the next login');
    expect((await db.query<{ two_step_required: boolean }>("SELECT two_step_required FROM accounts WHERE email = 'admin@example.com'")).rows[0]?.two_step_required).to.equal(true);
    const off = await cli(['accounts', 'require-two-step', '--email', 'admin@example.com', '--off'], env);
    expect(off.stdout).to.contain('no longer required');
    const unknown = await cli(['accounts', 'require-two-step', '--email', 'nobody@example.com'], env);
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.contain('no account has the address nobody@example.com');
  });

  it('sends a test message, lists failed deliveries and retries them', async () => {
    const smtp = await startSmtp();
    try {
      const mailEnv = { ...env, SMTP_URL: smtp.url };
      const ok = await cli(['mail', 'test', '--email', 'ops@example.com'], mailEnv);
      expect(ok.code, ok.stderr).to.equal(0);
      expect(ok.stdout).to.match(/mail_\S+: sent/);
      expect((await smtp.lastTo('ops@example.com')).subject).to.equal('Lanyard test message');

      const unreachable = await cli(['mail', 'test', '--email', 'later@example.com'], { ...env, SMTP_URL: 'smtp://127.0.0.1:1' });
      expect(unreachable.stdout, 'a connection failure is transient').to.match(/: pending \(connection/);

      smtp.failNext(550);
      const bounced = await cli(['mail', 'test', '--email', 'bounce@example.com'], mailEnv);
      expect(bounced.stdout).to.match(/: failed \(550/);
      const listed = await cli(['mail', 'failed'], mailEnv);
      expect(listed.stdout).to.match(/^mail_\S+\t\S+\tbounce@example\.com\ttest\t1 attempts\t550/m);
      const retried = await cli(['mail', 'retry'], mailEnv);
      expect(retried.stdout).to.contain('queued again: 1');
      expect((await smtp.lastTo('bounce@example.com')).subject).to.equal('Lanyard test message');
      expect((await cli(['mail', 'failed'], mailEnv)).stdout).to.contain('no failed messages');
    } finally {
      await smtp.close();
    }
  });

  it('prints each command’s own help, and the list of commands for --help alone', async () => {
    const general = await cli(['--help'], env);
    expect(general.code).to.equal(0);
    for (const command of ['migrate', 'clients create', 'keys rotate', 'accounts create', 'trello import', 'mail test']) expect(general.stdout).to.contain(`  ${command}`);
    for (const args of [['clients', '--help'], ['clients', 'create', '-h']]) {
      const res = await cli(args, env);
      expect(res.code, args.join(' ')).to.equal(0);
      expect(res.stdout).to.contain('usage: npm run cli -- clients');
      expect(res.stdout).to.contain('clients create --id ID --kind web|native|service');
      expect(res.stdout).to.contain('Kinds: web');
      for (const other of ['keys rotate', 'mail test', 'trello import', 'accounts purge']) expect(res.stdout, `${args.join(' ')} shows ${other}`).not.to.contain(other);
    }
    const trello = await cli(['trello', '--help'], env);
    expect(trello.stdout).to.contain('trello migrate [--dry-run]');
    expect(trello.stdout).not.to.contain('clients create');
    // A mistake in one command's options shows that command's help.
    const wrong = await cli(['clients', 'create', '--colour', 'blue'], env);
    expect(wrong.code).to.equal(2);
    expect(wrong.stderr).to.contain("Unknown option '--colour'");
    expect(wrong.stderr).to.contain('usage: npm run cli -- clients');
    expect(wrong.stderr).not.to.contain('mail test');
  });

  it('explains usage errors and bad configuration in one line each', async () => {
    // As the shell sees it: a process's exit status.
    const unknown = await cliProcess(['frobnicate'], env);
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.contain('unknown command: frobnicate');
    // The configuration the environment names (no database passed in).
    const badConfig = await cliInProcess(['clients', 'list'], { ...env, DATABASE_URL: 'mysql://x', ARGON2_TIME_COST: '1' });
    expect(badConfig.code).to.equal(1);
    expect(badConfig.stderr.trim().split('\n')).to.have.length(2);
    const refused = await cliInProcess(['clients', 'list'], { ...env, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' });
    expect(refused.code).to.equal(1);
    expect(refused.stderr.trim()).to.equal('DATABASE_URL: cannot connect to 127.0.0.1:1/none (connection refused)');
  });

  it('refuses to open an embedded database another process is using', async () => {
    const holder = await openDatabase({ dataDir });
    try {
      const res = await cliProcess(['clients', 'list'], env);
      expect(res.code).to.equal(1);
      expect(res.stderr).to.contain(`in use by process ${process.pid}`);
    } finally {
      await holder.close();
    }
  });
});
