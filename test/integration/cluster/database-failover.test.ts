import { expect } from 'chai';
import { DatabaseConnectError, DatabaseUnavailableError, openDatabase, type Database } from '../../../src/persistence/db.ts';
import { clusterUnavailable, startCluster, type Cluster } from '../../helpers/cluster.ts';

/**
 * The database layer's host list (decision 0045) against two real PostgreSQL servers started by
 * the test: a primary and its streaming standby (bench/cluster.sh, PostgreSQL only).
 */
const unavailable = clusterUnavailable('postgres');
const title = 'DATABASE_URL with a primary and a standby (target_session_attrs)';

describe(unavailable ? `${title} (skipped: ${unavailable})` : title, function () {
  this.timeout(60_000);
  let cluster: Cluster;
  let primary: string;
  let standby: string;
  const opened: Database[] = [];
  const open = async (hosts: string[], attrs: string) => {
    const db = await openDatabase({
      url: `postgres://lanyard@${hosts.join(',')}/lanyard?target_session_attrs=${attrs}`,
      timeouts: { connectMs: 2_000, statementMs: 3_000, idleInTransactionMs: 10_000 },
    });
    opened.push(db);
    return db;
  };
  const port = async (db: Database) => (await db.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]!.port;

  before(async function () {
    if (unavailable) this.skip();
    this.timeout(90_000);
    cluster = await startCluster({ components: 'postgres' });
    primary = `127.0.0.1:${cluster.env.PG_PRIMARY_PORT}`;
    standby = `127.0.0.1:${cluster.env.PG_STANDBY_PORT}`;
  });
  after(async () => {
    for (const db of opened) await db.close().catch(() => {});
    await cluster?.down();
  });

  it('refuses the standby listed first and connects to the primary; with any, takes the first that answers', async () => {
    const writable = await open([standby, primary], 'read-write');
    expect(await port(writable)).to.equal(Number(cluster.env.PG_PRIMARY_PORT));
    await writable.query('CREATE TABLE failover_probe (n int)');
    await writable.query('INSERT INTO failover_probe VALUES (1)');

    const primaryOnly = await open([standby, primary], 'primary');
    expect(await port(primaryOnly)).to.equal(Number(cluster.env.PG_PRIMARY_PORT));

    const any = await open([standby, primary], 'any');
    expect(await port(any), 'without the attribute the standby would be used').to.equal(Number(cluster.env.PG_STANDBY_PORT));
  });

  it('tries the next host when one does not answer', async () => {
    const db = await open(['127.0.0.1:1', primary], 'read-write');
    expect(await port(db)).to.equal(Number(cluster.env.PG_PRIMARY_PORT));
  });

  it('does not start on a standby alone: one line naming the hosts, never credentials', async () => {
    let caught: unknown;
    try {
      await open([standby], 'read-write');
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(DatabaseConnectError);
    expect((caught as Error).message).to.equal(`DATABASE_URL: cannot connect to ${standby}/lanyard (${standby} is read-only (target_session_attrs=read-write))`);
  });

  it('answers "unavailable" while the primary is down and uses the promoted standby without reopening', async () => {
    const db = await open([primary, standby], 'read-write');
    expect(await port(db)).to.equal(Number(cluster.env.PG_PRIMARY_PORT));
    await db.query('INSERT INTO failover_probe VALUES (2)');

    await cluster.run('stop-primary');
    // The open connection is gone, and a new one finds only a read-only server: 503 upstairs.
    for (let i = 0; i < 3; i += 1) {
      let caught: unknown;
      try {
        await db.query('INSERT INTO failover_probe VALUES (3)');
      } catch (err) {
        caught = err;
      }
      expect(caught, `attempt ${i + 1}`).to.be.instanceOf(DatabaseUnavailableError);
    }

    await cluster.run('promote');
    const started = Date.now();
    for (;;) {
      try {
        await db.query('INSERT INTO failover_probe VALUES (4)');
        break;
      } catch (err) {
        expect(err).to.be.instanceOf(DatabaseUnavailableError);
        expect(Date.now() - started, 'the promoted standby is used within 10 s').to.be.below(10_000);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(await port(db)).to.equal(Number(cluster.env.PG_STANDBY_PORT));
    // Everything committed on the primary before it stopped reached the standby.
    const { rows } = await db.query<{ n: number }>('SELECT n FROM failover_probe ORDER BY n');
    expect(rows.map((r) => r.n)).to.deep.equal([1, 2, 4]);
  });
});
