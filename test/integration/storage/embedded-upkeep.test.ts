import { expect } from 'chai';
import { openDatabase, type Database } from '../../../src/persistence/db.ts';
import { migrate } from '../../../src/persistence/migrate.ts';
import { embeddedUpkeep } from '../../../src/persistence/embedded-upkeep.ts';
import { createOidcPayloadQueries, VALUES_ROWS, type PayloadOp } from '../../../src/persistence/queries/oidc-payloads.ts';
import { serverUrl } from '../../helpers/db.ts';
import { startTestServer } from '../../helpers/server.ts';

/**
 * The embedded engine's autovacuum (decision 0064): PGlite runs none, so the sweeper vacuums and
 * analyses its tables by autovacuum's rules. Without it, a named statement's plan chosen while its
 * table was nearly empty stays for good: here the statement that stores a refresh's writes keeps
 * a sequential scan of every stored token.
 */
describe('embedded engine upkeep', () => {
  let db: Database;
  beforeEach(async function () {
    if (serverUrl) this.skip();
    db = await openDatabase({});
    await migrate(db);
  });
  afterEach(async () => {
    await db?.close();
  });

  /** Statistics are flushed by the engine at most once a second; this asks for them now. */
  const flushStatistics = async () => {
    await db.query('SELECT pg_stat_force_next_flush()');
    await db.query('SELECT 1');
  };

  it('replaces a plan cached on a nearly empty table once the table has grown and been analysed', async function () {
    this.timeout(60_000);
    const queries = createOidcPayloadQueries(db);
    let n = 0;
    // A batch of more rows than go as VALUES (its arrays' length is unknown to a generic plan): a
    // session's tokens consumed and stored anew, as a large request's writes would be.
    const rows = VALUES_ROWS + 1;
    const batch = () => {
      n += 1;
      const write = (model: string, idHash: string) => ({ kind: 'upsert' as const, write: { model, idHash, payload: { n }, grantId: 'grant', sessionUid: null, userCodeHash: null, expiresAt: new Date(Date.now() + 3_600_000), accountId: 'acc' } });
      const ops: PayloadOp[] = [];
      for (let i = 0; i < rows; i += 1) ops.push({ kind: 'consume', model: 'AccessToken', idHash: `t${n - 1}-${i}`, now: new Date() }, write('AccessToken', `t${n}-${i}`));
      return queries.writeBatch(ops);
    };
    for (let i = 0; i < 12; i += 1) await batch();
    await db.query(`INSERT INTO oidc_payloads (model, id_hash, payload, expires_at)
                    SELECT 'AccessToken', 'grown' || g, '{}'::jsonb, now() + interval '1 hour' FROM generate_series(1, 20000) AS g`);
    await batch();
    const prepared = (await db.query<{ name: string; parameter_types: string[] }>("SELECT name, parameter_types::text[] AS parameter_types FROM pg_prepared_statements WHERE statement LIKE 'WITH used AS (UPDATE oidc_payloads%'")).rows[0];
    expect(prepared, 'the batch statement is prepared by name (decision 0062)').to.not.equal(undefined);
    const plan = async () => (await db.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN EXECUTE ${prepared!.name}(${prepared!.parameter_types.map(() => 'NULL').join(', ')})`,
    )).rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(await plan(), 'the plan cached while the table was small').to.contain('Seq Scan on oidc_payloads');

    await flushStatistics();
    const done = await embeddedUpkeep(db);
    expect(done.vacuumed).to.include('oidc_payloads');
    expect(await plan(), 'planned again with the statistics').to.contain('Index Scan using oidc_payloads__pkey').and.not.contain('Seq Scan');
    const stats = (await db.query<{ dead: string; analyzed: boolean }>("SELECT n_dead_tup AS dead, last_analyze IS NOT NULL AS analyzed FROM pg_stat_user_tables WHERE relname = 'oidc_payloads'")).rows[0]!;
    expect(stats).to.deep.equal({ dead: '0', analyzed: true });
  });

  it('stores a request’s few rows as VALUES, whose generic plan probes the index even on an empty table', async function () {
    this.timeout(60_000);
    const queries = createOidcPayloadQueries(db);
    let n = 0;
    const refresh = () => {
      n += 1;
      const write = (model: string, idHash: string) => ({ kind: 'upsert' as const, write: { model, idHash, payload: { n }, grantId: 'grant', sessionUid: null, userCodeHash: null, expiresAt: new Date(Date.now() + 3_600_000), accountId: 'acc' } });
      return queries.writeBatch([{ kind: 'consume', model: 'RefreshToken', idHash: `r${n - 1}`, now: new Date() }, write('RefreshToken', `r${n}`), write('AccessToken', `a${n}`)]);
    };
    for (let i = 0; i < 12; i += 1) await refresh();
    await db.query(`INSERT INTO oidc_payloads (model, id_hash, payload, expires_at)
                    SELECT 'AccessToken', 'grown' || g, '{}'::jsonb, now() + interval '1 hour' FROM generate_series(1, 20000) AS g`);
    await refresh();
    const prepared = (await db.query<{ name: string; parameter_types: string[]; generic: string }>("SELECT name, parameter_types::text[] AS parameter_types, generic_plans::text AS generic FROM pg_prepared_statements WHERE statement LIKE 'WITH used AS (UPDATE oidc_payloads%'")).rows[0];
    expect(Number(prepared!.generic), 'PostgreSQL keeps its generic plan instead of planning each time').to.be.greaterThan(0);
    const plan = (await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE ${prepared!.name}(${prepared!.parameter_types.map(() => 'NULL').join(', ')})`)).rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(plan, 'no upkeep has run').to.contain('Index Scan using oidc_payloads__pkey').and.not.contain('Seq Scan');
  });

  it('leaves a table alone until autovacuum’s thresholds are passed, and analyses one whose rows changed', async () => {
    await db.exec('CREATE TABLE upkeep_probe (id int PRIMARY KEY, v text)');
    await db.query('INSERT INTO upkeep_probe SELECT g, $1 FROM generate_series(1, 40) AS g', ['x']);
    await flushStatistics();
    expect((await embeddedUpkeep(db)).analyzed, '40 rows changed: under 50').to.not.include('upkeep_probe');
    await db.query('INSERT INTO upkeep_probe SELECT g, $1 FROM generate_series(41, 100) AS g', ['x']);
    await flushStatistics();
    const first = await embeddedUpkeep(db);
    expect(first.analyzed, '100 rows changed since none was analysed').to.include('upkeep_probe');
    expect(first.vacuumed).to.not.include('upkeep_probe');
    await flushStatistics();
    const again = await embeddedUpkeep(db);
    expect([...again.analyzed, ...again.vacuumed], 'nothing changed since').to.not.include('upkeep_probe');
    await db.query('DELETE FROM upkeep_probe WHERE id > 20');
    await flushStatistics();
    expect((await embeddedUpkeep(db)).vacuumed, '80 dead rows of 100').to.include('upkeep_probe');
  });
});

describe('the sweeper’s embedded engine upkeep', () => {
  it('is a task of the embedded engine only: a server has its own autovacuum', async function () {
    this.timeout(60_000);
    const server = await startTestServer();
    try {
      const names = server.registry.sweeper.names();
      expect(names.at(-1), 'the last task').to.equal(serverUrl ? 'sent mail records' : 'embedded engine upkeep (vacuum, analyze)');
      if (serverUrl) return;
      // A round of the sweeper analyses what changed (the test's accounts, clients, keys …).
      await server.registry.db.query('SELECT pg_stat_force_next_flush()');
      await server.registry.db.query("INSERT INTO throttles (key, failures, free_attempts, last_failure_at) SELECT 'probe:' || g, 1, 5, now() FROM generate_series(1, 200) AS g");
      await server.registry.db.query('SELECT pg_stat_force_next_flush()');
      await server.registry.db.query('SELECT 1');
      await server.registry.sweeper.sweepOnce();
      const analyzed = (await server.registry.db.query<{ analyzed: boolean }>("SELECT last_analyze IS NOT NULL OR last_vacuum IS NOT NULL AS analyzed FROM pg_stat_user_tables WHERE relname = 'throttles'")).rows[0]!;
      expect(analyzed.analyzed, 'the throttles table, 200 rows written, was analysed by the round').to.equal(true);
    } finally {
      await server.close();
    }
  });
});
