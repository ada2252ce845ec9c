import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The one small data-access layer: parameterised SQL in, plain rows out, on either engine.
 * Nothing above this file knows whether it talks to a PostgreSQL server (`pg`) or to the
 * embedded engine (PGlite); the SQL is the same (docs/decisions/0001-postgresql.md).
 *
 * Row shapes are kept engine-neutral by the queries themselves: counts are cast to int,
 * JSON goes in as text cast to jsonb, timestamps come back as Date on both drivers.
 */
export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<{ rows: Row[]; rowCount: number }>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Database extends Queryable {
  readonly engine: 'postgres' | 'pglite';
  /**
   * Runs `fn` in one transaction: committed if it resolves, rolled back if it throws.
   * Inside `fn`, query only through `tx`: PGlite has a single connection, so a query on the
   * database itself waits for the transaction to end — forever.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export class DatabaseConnectError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatabaseConnectError';
  }
}

export interface OpenOptions {
  /** postgres:// URL of a server; absent means the embedded engine. */
  url?: string | undefined;
  /** Directory of the embedded engine's files; absent (with no url) means in memory. */
  dataDir?: string | undefined;
  /** Schema to use on a server (tests isolate each run in its own schema). */
  schema?: string | undefined;
  /** Pool size on a server. */
  poolSize?: number;
}

export async function openDatabase(options: OpenOptions): Promise<Database> {
  return guardTransactions(options.url ? await openServer(options.url, options) : await openEmbedded(options.dataDir));
}

/**
 * Refuses a query on the database itself from inside one of its transactions. On PGlite (one
 * connection) such a query would wait for the transaction forever; on a server it would run
 * outside the transaction. Either way it is a bug, so it fails at once with a clear message.
 */
function guardTransactions(db: Database): Database {
  const inTransaction = new AsyncLocalStorage<boolean>();
  const check = () => {
    if (inTransaction.getStore()) throw new Error('query on the database inside one of its transactions: use the transaction handle (tx)');
  };
  return {
    engine: db.engine,
    query: (sql, params) => {
      check();
      return db.query(sql, params);
    },
    exec: (sql) => {
      check();
      return db.exec(sql);
    },
    transaction: (fn) => {
      check();
      return db.transaction((tx) => inTransaction.run(true, () => fn(tx)));
    },
    close: () => db.close(),
  };
}

function describeConnectError(url: string, err: unknown): string {
  let where = url;
  try {
    const parsed = new URL(url);
    where = `${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch { /* keep the raw text: it is only used for the message */ }
  const e = err as NodeJS.ErrnoException & { code?: string };
  const reason =
    e.code === 'ECONNREFUSED' ? 'connection refused'
      : e.code === 'ENOTFOUND' ? 'host not found'
        : e.code === 'ETIMEDOUT' ? 'timed out'
          : e.code === '3D000' ? 'database does not exist'
            : e.code === '28P01' || e.code === '28000' ? 'authentication failed'
              : (e.message || String(err)).split('\n')[0];
  return `DATABASE_URL: cannot connect to ${where} (${reason})`;
}

async function openServer(url: string, options: OpenOptions): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 5_000,
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  });
  // An idle client that loses its server must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  try {
    if (options.schema) {
      const client = await pool.connect();
      try {
        await client.query(`CREATE SCHEMA IF NOT EXISTS "${options.schema.replaceAll('"', '')}"`);
      } finally {
        client.release();
      }
    } else {
      await pool.query('SELECT 1');
    }
  } catch (err) {
    await pool.end().catch(() => {});
    throw new DatabaseConnectError(describeConnectError(url, err), { cause: err });
  }

  const run = async <Row>(client: pg.Pool | pg.PoolClient, sql: string, params?: readonly unknown[]) => {
    const result = await client.query(sql, params as unknown[] | undefined);
    return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
  };

  return {
    engine: 'postgres',
    query: (sql, params) => run(pool, sql, params),
    exec: async (sql) => { await pool.query(sql); },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({
          query: (sql, params) => run(client, sql, params),
          exec: async (sql) => { await client.query(sql); },
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

/**
 * PGlite keeps its files in one folder and allows a single process at a time. A lock file with
 * the owner's pid stops a second process (say a CLI command while the server runs) from opening
 * the same folder and corrupting it.
 */
function acquireLock(dataDir: string): () => void {
  const lockPath = join(dataDir, 'lanyard.lock');
  try {
    const owner = Number(readFileSync(lockPath, 'utf8'));
    if (owner && owner !== process.pid) {
      try {
        process.kill(owner, 0);
        throw new DatabaseConnectError(
          `DATA_DIR: the embedded database in ${dataDir} is in use by process ${owner}; stop it first or set DATABASE_URL`,
        );
      } catch (err) {
        if (err instanceof DatabaseConnectError) throw err;
        // The owner is gone: a stale lock from a process that was killed.
      }
    }
  } catch (err) {
    if (err instanceof DatabaseConnectError) throw err;
  }
  writeFileSync(lockPath, String(process.pid));
  return () => rmSync(lockPath, { force: true });
}

async function openEmbedded(dataDir: string | undefined): Promise<Database> {
  let release = () => {};
  let path: string | undefined;
  if (dataDir) {
    mkdirSync(dataDir, { recursive: true });
    release = acquireLock(dataDir);
    path = join(dataDir, 'pglite');
  }
  let db: PGlite;
  try {
    db = path ? await PGlite.create(path) : await PGlite.create();
  } catch (err) {
    release();
    throw new DatabaseConnectError(`DATA_DIR: cannot open the embedded database in ${dataDir} (${(err as Error).message})`, { cause: err });
  }

  const run = async <Row>(target: Pick<PGlite, 'query'>, sql: string, params?: readonly unknown[]) => {
    const result = await target.query<Row>(sql, params as unknown[] | undefined);
    return { rows: result.rows, rowCount: result.affectedRows || result.rows.length };
  };

  return {
    engine: 'pglite',
    query: (sql, params) => run(db, sql, params),
    exec: async (sql) => { await db.exec(sql); },
    transaction: (fn) => db.transaction((tx) => fn({
      query: (sql, params) => run(tx, sql, params),
      exec: async (sql) => { await tx.exec(sql); },
    })),
    async close() {
      await db.close();
      release();
    },
  };
}
