import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';
import { AsyncLocalStorage } from 'node:async_hooks';
import { AppError } from '../shared/errors.ts';
import { parseDatabaseUrl } from './hosts.ts';

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

/**
 * One writing statement (INSERT, UPDATE or DELETE, parameters `$1…$n` of `params`, no RETURNING
 * read by anyone) that its owner may hand to the batch the current request stores as it ends
 * (src/oidc/adapter.ts, `createWriteBehind`): it is then made in the same statement, and so the
 * same commit, as the engine's writes of that request — all of them or none.
 */
export interface DeferredWrite {
  sql: string;
  params: unknown[];
}

/** Queues `write` in the current request's batch; false when no batch is open (the caller runs it now). */
export type Defer = (write: DeferredWrite) => boolean;

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

/**
 * The database did not answer: refused, dropped, timed out, shutting down. Raised by this layer for
 * every connection-level failure so the layers above answer 503 with Retry-After (RFC 9110
 * §15.6.4) instead of a 500, and never see a driver's error shape (docs/reliability.md).
 */
export class DatabaseUnavailableError extends AppError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('server.unavailable', 503, { message: `database unavailable (${reason})`, expose: false, cause: options?.cause });
    this.name = 'DatabaseUnavailableError';
  }
}

/** Socket errors that mean the server cannot be reached. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/**
 * SQLSTATEs that mean the server, not the statement, failed (PostgreSQL Appendix A): class 08
 * connection exception, 57P01-57P03 shutting down or starting, 57014 canceled by
 * statement_timeout, 53300 too many connections, 25P03 idle-in-transaction timeout, 25006 a write
 * reaching a read-only server (a standby, or a demoted primary: a failover is under way; the
 * connection is dropped and the next one looks for the primary, src/persistence/failover-pool.ts).
 */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '57014', '53300', '25P03', '25006']);
/** Messages of node-postgres for a dropped or timed-out connection, which carry no code. */
const DRIVER_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Client was closed|Connection ended)/;

/** Why `err` means the database is unavailable, or undefined for any other failure. */
export function unavailableReason(err: unknown): string | undefined {
  if (err instanceof DatabaseUnavailableError) return err.message;
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  if (UNREACHABLE.has(code)) return code === 'ECONNREFUSED' ? 'connection refused' : code;
  if (UNAVAILABLE_STATES.has(code) || code.startsWith('08')) return code === '57014' ? 'statement timeout' : `${code} ${message.split('\n')[0]}`;
  if (DRIVER_MESSAGES.test(message)) return message.split('\n')[0];
  return undefined;
}

/**
 * Errors that mean a connection's prepared statements are not what the driver believes it
 * prepared there (decision 0070): 26000 a name it prepared is missing, 42P05 a name it is
 * preparing already exists, 08P01 a bind that does not fit the statement under that name — all
 * what a pooler in transaction mode that cannot keep prepared statements does, handing each
 * transaction another server connection — and, told by its message, 0A000 "cached plan must not
 * change result type": a statement whose result columns a schema change by another process altered.
 */
const PREPARED_STATE_LOST = new Set(['26000', '42P05', '08P01']);
const preparedStateLost = (err: unknown): boolean => {
  const { code, message } = err as { code?: string; message?: string };
  return PREPARED_STATE_LOST.has(code ?? '') || (code === '0A000' && /cached plan must not change result type/.test(message ?? ''));
};

/** One of PREPARED_STATE_LOST, said in words an operator can act on (the request answers 500). */
export class PreparedStatementError extends Error {
  constructor(cause: Error) {
    super(`${cause.message}: the connection's prepared statements are not the ones Lanyard prepared, as behind a pooler in transaction mode that cannot keep them (PgBouncer before 1.21, or without max_prepared_statements; set DATABASE_PREPARED_STATEMENTS=false), or after a schema change by another process (the connection is replaced) (decision 0070)`, { cause });
    this.name = 'PreparedStatementError';
  }
}

/** `err` as a DatabaseUnavailableError when it is a connection-level failure, else unchanged. */
function classify(err: unknown): unknown {
  if (err instanceof DatabaseUnavailableError) return err;
  const reason = unavailableReason(err);
  return reason ? new DatabaseUnavailableError(reason, { cause: err }) : err;
}

/**
 * Bounds on every wait for a PostgreSQL server (docs/decisions/0016-database-faults.md). The
 * embedded engine runs in-process and has nothing to wait for.
 */
export interface DatabaseTimeouts {
  /** Longest wait for a pooled connection, new or free (pg-pool `connectionTimeoutMillis`). */
  connectMs: number;
  /**
   * Server-side `statement_timeout`. The client gives up one second later (`query_timeout`):
   * normally the server cancels first and the connection stays usable; a server that answers
   * nothing at all (frozen, partitioned) is caught by the client's bound.
   */
  statementMs: number;
  /** Server-side `idle_in_transaction_session_timeout`: a transaction left open frees its locks. */
  idleInTransactionMs: number;
}

export const defaultTimeouts: DatabaseTimeouts = { connectMs: 3_000, statementMs: 5_000, idleInTransactionMs: 15_000 };

/** The configured bounds (seconds, `config.database`) in the pool's units. */
export function timeoutsFrom(seconds: { connectTimeoutSeconds: number; statementTimeoutSeconds: number; idleInTransactionTimeoutSeconds: number }): DatabaseTimeouts {
  return {
    connectMs: Math.round(seconds.connectTimeoutSeconds * 1000),
    statementMs: Math.round(seconds.statementTimeoutSeconds * 1000),
    idleInTransactionMs: Math.round(seconds.idleInTransactionTimeoutSeconds * 1000),
  };
}

export interface OpenOptions {
  /** postgres:// URL of a server; absent means the embedded engine. */
  url?: string | undefined;
  /** Directory of the embedded engine's files; absent (with no url) means in memory. */
  dataDir?: string | undefined;
  /** Schema to use on a server (tests isolate each run in its own schema). */
  schema?: string | undefined;
  /** The embedded engine's shared_buffers in MB (decision 0043: 32; EMBEDDED_SHARED_BUFFERS_MB). */
  sharedBuffersMb?: number | undefined;
  /** Pool size on a server. */
  poolSize?: number;
  /** Bounds on waits for a server; `defaultTimeouts` when absent. */
  timeouts?: DatabaseTimeouts | undefined;
  /**
   * Prepare statements run more than once under a name (default true; DATABASE_PREPARED_STATEMENTS,
   * decisions 0062 and 0070). False for a pooler in transaction mode that cannot keep them.
   */
  preparedStatements?: boolean | undefined;
}

export async function openDatabase(options: OpenOptions): Promise<Database> {
  const prepared = options.preparedStatements ?? true;
  return guardTransactions(options.url ? await openServer(options.url, options, prepared) : await openEmbedded(options.dataDir, options.sharedBuffersMb ?? EMBEDDED_SHARED_BUFFERS_MB, prepared));
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
  // Hosts and database only: the URL may hold a password.
  let where = 'the database server';
  try {
    where = parseDatabaseUrl(url).where;
  } catch { /* the configuration schema refuses such a URL first */ }
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

async function openServer(url: string, options: OpenOptions, prepared: boolean): Promise<Database> {
  const timeouts = options.timeouts ?? defaultTimeouts;
  // One host: node-postgres's pool; a host list or target_session_attrs: the failover pool.
  // Each engine's driver is loaded by the engine that uses it: PGlite's module is ~7 MB of a
  // server process that never opens it, pg's a few of an embedded one (decision 0059).
  const { createPool } = await import('./failover-pool.ts');
  const pool = createPool(url, {
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: timeouts.connectMs,
    statement_timeout: timeouts.statementMs,
    query_timeout: timeouts.statementMs + 1_000,
    idle_in_transaction_session_timeout: timeouts.idleInTransactionMs,
    // JIT compilation off for every connection (decision 0042): an OLTP statement runs in well
    // under a millisecond, and the planner's cost threshold for JIT (jit_above_cost) is crossed
    // by mere estimates; a stale or missing estimate cost 175-207 ms of compiling per lookup.
    options: ['-c jit=off', ...(options.schema ? [`-c search_path=${options.schema}`] : [])].join(' '),
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

  // Named statements (decision 0070): node-postgres parses a name once per connection, and the
  // server plans it once too when its generic plan is no dearer (plan_cache_mode auto). Unnamed,
  // a password login's nine statements were parsed and planned at every call: 4.4 ms of the
  // server's CPU a login against 2.3 ms named, on the two cores its hashing needs.
  const names = prepared ? preparedNames() : undefined;
  const run = async <Row>(client: pg.Pool | pg.PoolClient, sql: string, params?: readonly unknown[]) => {
    try {
      const name = names && params?.length ? names.nameFor(sql) : undefined;
      const result = await client.query(name ? { name, text: sql, values: params as unknown[] } : { text: sql, values: params as unknown[] | undefined });
      return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
    } catch (err) {
      if (names && preparedStateLost(err)) throw new PreparedStatementError(err as Error);
      throw classify(err);
    }
  };

  return {
    engine: 'postgres',
    query: (sql, params) => run(pool, sql, params),
    exec: async (sql) => { await run(pool, sql); },
    async transaction(fn) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw classify(err);
      }
      let broken = false;
      // A checked-out connection that the server ends (idle-in-transaction timeout, shutdown)
      // emits 'error' on the client itself, not on the pool: unheard, it would crash the
      // process. The statement waiting on it fails on its own; the connection is dropped.
      const lost = () => { broken = true; };
      client.on('error', lost);
      try {
        await run(client, 'BEGIN');
        const result = await fn({
          query: (sql, params) => run(client, sql, params),
          exec: async (sql) => { await run(client, sql); },
        });
        await run(client, 'COMMIT');
        return result;
      } catch (err) {
        // A connection that failed is dropped, not rolled back: ROLLBACK would wait on it for the
        // whole query timeout, and the server ends the transaction when the connection goes. So
        // is one whose prepared statements no longer match what the driver believes it holds:
        // a fresh connection prepares them again (pg-pool drops it itself outside transactions).
        broken = err instanceof DatabaseUnavailableError || err instanceof PreparedStatementError;
        if (!broken) await client.query('ROLLBACK').catch(() => { broken = true; });
        throw err;
      } finally {
        client.off('error', lost);
        client.release(broken);
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

/**
 * The embedded engine's settings. Its shared buffers are allocated inside its WebAssembly memory
 * and count in full towards the process's RSS: at PostgreSQL's 128 MB default, an idle embedded
 * server held 388 MB and the legacy import passed 500 MB (issue 14: < 300 MB). 32 MB (4,096
 * pages) still holds every hot index of a small deployment, and pages it does not hold are read
 * from the operating system's cache of DATA_DIR, not from the disk (decision 0043). The operator
 * may go lower (EMBEDDED_SHARED_BUFFERS_MB, down to 1: −31 MB of an idle process; decision 0059).
 */
const EMBEDDED_SHARED_BUFFERS_MB = 32;

async function openEmbedded(dataDir: string | undefined, sharedBuffersMb: number, prepared: boolean): Promise<Database> {
  const settings = { postgresqlconf: [`shared_buffers=${Math.max(1, Math.floor(sharedBuffersMb))}MB`] };
  let release = () => {};
  let path: string | undefined;
  if (dataDir) {
    mkdirSync(dataDir, { recursive: true });
    release = acquireLock(dataDir);
    path = join(dataDir, 'pglite');
  }
  let db: PGlite;
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    db = path ? await PGlite.create(path, settings) : await PGlite.create(settings);
  } catch (err) {
    release();
    throw new DatabaseConnectError(`DATA_DIR: cannot open the embedded database in ${dataDir} (${(err as Error).message})`, { cause: err });
  }
  // The embedded engine is built without LLVM and cannot JIT-compile; said anyway, so that both
  // engines answer `SHOW jit` alike (decision 0042). Its one connection keeps the setting.
  await db.exec('SET jit = off');

  // Statements go through node-postgres over PGlite's own protocol adapter (decision 0062), so
  // that the hot ones can be prepared once as named statements: PGlite's `query()` parses,
  // analyses and plans every statement again (an unnamed one), and on the embedded engine that
  // is event-loop time — half of a password login's SQL. Rows and parameters then go through the
  // same driver, with the same types, as on a PostgreSQL server.
  let client: pg.Client;
  try {
    const [{ default: Pg }, { createPgConfig }] = await Promise.all([import('pg'), import('@electric-sql/pglite/node-postgres')]);
    client = new Pg.Client(createPgConfig(db) as unknown as pg.ClientConfig);
    await client.connect();
    // The adapter runs in-process: no socket to lose. An 'error' event unheard would end the process.
    client.on('error', () => {});
  } catch (err) {
    await db.close().catch(() => {});
    release();
    throw new DatabaseConnectError(`the embedded database could not be opened (${(err as Error).message})`, { cause: err });
  }
  const names = prepared ? preparedNames() : undefined;
  const run = async <Row>(sql: string, params?: readonly unknown[]) => {
    const name = names && params?.length ? names.nameFor(sql) : undefined;
    const result = await client.query(name ? { name, text: sql, values: params as unknown[] } : { text: sql, values: params as unknown[] | undefined });
    return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
  };
  // One connection: a transaction holds it from BEGIN to COMMIT, and every other statement waits
  // its turn (PGlite's own `transaction()` did the same).
  let tail: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const turn = tail.then(work, work);
    tail = turn.then(() => undefined, () => undefined);
    return turn;
  };

  return {
    engine: 'pglite',
    query: (sql, params) => exclusive(() => run(sql, params)),
    exec: (sql) => exclusive(async () => { await client.query(sql); }),
    transaction: (fn) => exclusive(async () => {
      await client.query('BEGIN');
      try {
        const result = await fn({
          query: (sql, params) => run(sql, params),
          exec: async (sql) => { await client.query(sql); },
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        // The statement's own error is the one to report; a failed ROLLBACK adds nothing to it.
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
    }),
    async close() {
      await exclusive(() => client.end()).catch(() => {});
      await db.close();
      release();
    },
  };
}

/**
 * Which statements are prepared under a name (decisions 0062, 0070): a statement with
 * parameters the second time its text is seen, up to `MAX_NAMED` of them. Names are never
 * released, so a text that is built anew each time (values written into the SQL) must not take
 * every place: a one-off statement is never named, and past the bound new texts run unnamed, as
 * before. The texts seen once are kept in a set, emptied when it grows past `MAX_SEEN`. On a
 * server the names are the process's and each pooled connection prepares a name the first time
 * it runs it: at most MAX_NAMED plans a connection.
 */
const MAX_NAMED = 300;
const MAX_SEEN = 5_000;

function preparedNames() {
  const named = new Map<string, string>();
  let seen = new Set<string>();
  return {
    nameFor(sql: string): string | undefined {
      const name = named.get(sql);
      if (name || named.size >= MAX_NAMED) return name;
      if (!seen.has(sql)) {
        if (seen.size >= MAX_SEEN) seen = new Set();
        seen.add(sql);
        return undefined;
      }
      seen.delete(sql);
      // The name is the text's digest, never a counter: behind a pooler, a name prepared by
      // another process (another instance, the CLI) on the same server connection then either
      // means the same text or fails, and never runs someone else's statement with our values.
      const fresh = `lanyard_${createHash('sha256').update(sql).digest('hex').slice(0, 32)}`;
      named.set(sql, fresh);
      return fresh;
    },
  };
}
