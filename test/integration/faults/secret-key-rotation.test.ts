import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRegistry, type Registry } from '../../../src/registry.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { secretKeyId } from '../../../src/shared/crypto.ts';
import type { Clock } from '../../../src/shared/clock.ts';
import { resealSecrets, SEALED_COLUMNS } from '../../../src/cli/secrets.ts';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import { testConfig } from '../../helpers/server.ts';
import { createAccount, createClient } from '../../helpers/factories.ts';
import { enrolTwoStep, totpAt } from '../../helpers/two-step.ts';
import { cliInProcess as cli, spawnServer } from '../../helpers/cli.ts';
import { migratedDataDir } from '../../helpers/data-dir.ts';

const meta = { ip: null, userAgent: null, requestId: null, clientId: null };

/**
 * SECRET_KEY rotation (docs/decisions/0017-secret-key-rotation.md): the new key seals, former keys
 * listed in SECRET_KEYS_PREVIOUS still open, `secrets reseal` moves everything to the new key, and
 * keyed hashes (recovery codes, throttle subjects) stay valid throughout.
 */
describe('SECRET_KEY rotation', function () {
  this.timeout(120_000);
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  let now = Date.UTC(2026, 10, 2, 9);
  const clock: Clock = { now: () => now };
  const open: Registry[] = [];

  const registryWith = async (secretKey: Buffer, previous: Buffer[] = []) => {
    const registry = await createRegistry(
      testConfig({ secretKey: secretKey.toString('base64url'), ...(previous.length ? { secretKeysPrevious: previous.map((k) => k.toString('base64url')) } : {}) }),
      { logger: createLogger('silent'), db: await testDatabase(), clock },
    );
    open.push(registry);
    return registry;
  };

  const sealedValues = async () => {
    const db = await testDatabase();
    const values: string[] = [];
    for (const { column } of SEALED_COLUMNS) {
      const { rows } = await db.query<{ v: string }>(`SELECT ${column.column} AS v FROM ${column.table} WHERE ${column.column} IS NOT NULL`);
      values.push(...rows.map((r) => r.v));
    }
    return values;
  };

  before(resetDatabase);
  afterEach(async () => {
    for (const registry of open.splice(0)) await registry.close();
  });

  it('lists every sealed column of the schema for reseal', async () => {
    const { rows } = await (await testDatabase()).query<{ name: string }>(
      `SELECT table_name || '.' || column_name AS name FROM information_schema.columns
       WHERE table_schema = current_schema() AND column_name LIKE '%sealed%' ORDER BY 1`,
    );
    expect(SEALED_COLUMNS.map((c) => `${c.column.table}.${c.column.column}`).sort()).to.deep.equal(rows.map((r) => r.name));
  });

  it('opens old secrets with the previous key, keeps keyed hashes valid, and reseals everything with the new key', async () => {
    // Before: data sealed and hashed under the old key.
    const before = await registryWith(oldKey);
    const client = await createClient(before);
    const account = await createAccount(before);
    const { secret, recoveryCodes } = await enrolTwoStep(before, account);
    const mailId = await before.db.transaction((tx) => before.mail.outbox.enqueue(tx, { to: 'ops@example.com', template: 'test', data: {} }));
    const codeKey = before.codeKey;
    await before.close();
    open.length = 0;

    // Rotated: the new key seals, the old one still opens.
    const rotated = await registryWith(newKey, [oldKey]);
    expect(rotated.codeKey.equals(codeKey), 'keyed hashes keep their key').to.equal(true);
    expect((await rotated.clients.findMetadata(client.clientId))?.client_secret).to.equal(client.clientSecret);
    expect(await rotated.twoStep.verify(account, recoveryCodes[0]!, meta)).to.deep.include({ ok: true, method: 'recovery' });
    now += 60_000;
    expect(await rotated.twoStep.verify(account, await totpAt(secret, now), meta)).to.deep.include({ ok: true, method: 'totp' });
    expect((await rotated.mail.queries.find(mailId))?.body_sealed).to.match(/^v2\./);

    const oldPrefix = `v2.${secretKeyId(oldKey)}.`;
    expect((await sealedValues()).some((v) => v.startsWith(oldPrefix))).to.equal(true);
    const report = await resealSecrets(rotated);
    expect(report.keyId).to.equal(secretKeyId(newKey));
    expect(report.columns.every((c) => c.unreadable.length === 0)).to.equal(true);
    expect(report.columns.find((c) => c.name === 'clients.secret_sealed')?.resealed).to.be.greaterThan(0);
    expect(report.columns.find((c) => c.name === 'totp_factors.secret_sealed')?.resealed).to.equal(1);
    const values = await sealedValues();
    expect(values.length).to.be.greaterThan(5);
    expect(values.every((v) => v.startsWith(`v2.${secretKeyId(newKey)}.`))).to.equal(true);
    // A second run finds nothing left to do.
    expect((await resealSecrets(rotated)).columns.every((c) => c.resealed === 0)).to.equal(true);
    await rotated.close();
    open.length = 0;

    // The former key is retired: the new key alone opens everything.
    const after = await registryWith(newKey);
    expect(after.codeKey.equals(codeKey)).to.equal(true);
    expect((await after.clients.findMetadata(client.clientId))?.client_secret).to.equal(client.clientSecret);
    expect(await after.twoStep.verify(account, recoveryCodes[1]!, meta)).to.deep.include({ ok: true, method: 'recovery' });
    now += 60_000;
    expect(await after.twoStep.verify(account, await totpAt(secret, now), meta)).to.deep.include({ ok: true, method: 'totp' });
  });

  it('refuses to start with a key that opens nothing, in one line naming key ids only', async () => {
    const err = await registryWith(oldKey).then(() => undefined, (e: unknown) => e as Error);
    expect(err?.name).to.equal('SecretKeyMismatchError');
    expect(err?.message).to.equal(`SECRET_KEY: does not open this database's secrets (they are sealed with key ${secretKeyId(newKey)}; SECRET_KEY is key ${secretKeyId(oldKey)})`);
    expect(err?.message).not.to.contain(oldKey.toString('base64url'));
  });

  describe('from the command line and the server process', () => {
    let dataDir: string;
    // The commands run through the CLI's entry in this process, on the data directory the server process opens.
    before(async () => { dataDir = await migratedDataDir(mkdtempSync(join(tmpdir(), 'lanyard-rotation-'))); });
    after(() => rmSync(dataDir, { recursive: true, force: true }));

    it('prints one line and exits 1 for a wrong key, and reseals after a rotation', async () => {
      const env = (key: Buffer, previous?: Buffer) => ({ DATA_DIR: dataDir, SECRET_KEY: key.toString('base64url'), ...(previous ? { SECRET_KEYS_PREVIOUS: previous.toString('base64url') } : {}) });
      const created = await cli(['clients', 'create', '--id', 'jira', '--kind', 'web', '--name', 'Jira', '--redirect-uri', 'https://jira.example.com/cb'], env(oldKey));
      expect(created.code, created.stderr).to.equal(0);

      const expected = `SECRET_KEY: does not open this database's secrets (they are sealed with key ${secretKeyId(oldKey)}; SECRET_KEY is key ${secretKeyId(newKey)})\n`;
      const wrong = await cli(['clients', 'list'], env(newKey));
      expect(wrong.code).to.equal(1);
      expect(wrong.stderr).to.equal(expected);

      const server = spawnServer({ ...env(newKey), PORT: '0' });
      let stderr = '';
      server.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      const code = await new Promise<number | null>((resolve) => server.once('exit', resolve));
      expect(code).to.equal(1);
      expect(stderr).to.equal(expected);

      const resealed = await cli(['secrets', 'reseal'], env(newKey, oldKey));
      expect(resealed.code, resealed.stderr).to.equal(0);
      expect(resealed.stdout).to.contain('clients.secret_sealed: 1 re-sealed');
      expect(resealed.stdout).to.contain(`every sealed value opens with SECRET_KEY (key ${secretKeyId(newKey)}) alone`);

      const listed = await cli(['clients', 'list'], env(newKey));
      expect(listed.code, listed.stderr).to.equal(0);
      expect(listed.stdout).to.match(/^jira\tweb/m);
    });
  });
});
