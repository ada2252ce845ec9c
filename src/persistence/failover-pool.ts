import pg from 'pg';
import { createHostSelector, parseDatabaseUrl, type DatabaseHost, type DatabaseTarget } from './hosts.ts';

/**
 * A pg pool over a host list with libpq's `target_session_attrs` (docs/decisions/0045-database-failover.md).
 *
 * Each new connection goes to the host last accepted; a host that does not answer, or answers
 * read-only when `read-write`/`primary` is asked, is closed and the next host is tried, up to the
 * whole list, within the same acquisition. Connections already open are never moved: when their
 * server goes away they fail, the layer above answers 503 and drops them (src/persistence/db.ts),
 * and the connections opened after that find the new primary. So a standby promoted after the
 * primary stopped is used without a restart.
 */

/** Marks an error that came from trying one host, so the pool tries the next one. */
const HOST_FAILED = Symbol('lanyard.hostFailed');

/** The server answered, but it is a standby (or read-only) and a writable one was asked for. */
export class ReadOnlyHostError extends Error {
  /** SQLSTATE read_only_sql_transaction: the layer above classifies it as "database unavailable". */
  readonly code = '25006';
  constructor(where: string, attrs: string) {
    super(`${where} is read-only (target_session_attrs=${attrs})`);
    this.name = 'ReadOnlyHostError';
  }
}

function hostFailure(err: unknown): boolean {
  for (let e = err as { cause?: unknown } | undefined, depth = 0; e && depth < 3; e = e.cause as typeof e, depth += 1) {
    if ((e as Record<symbol, unknown>)[HOST_FAILED]) return true;
  }
  return false;
}

function mark(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  (e as unknown as Record<symbol, unknown>)[HOST_FAILED] = true;
  return e;
}

const hostName = (h: DatabaseHost) => `${h.host}:${h.port}`;

/** Whether the session on `client` is acceptable for `attrs`. */
async function acceptable(client: pg.Client, attrs: DatabaseTarget['targetSessionAttrs']): Promise<boolean> {
  if (attrs === 'read-write') {
    const { rows } = await client.query<{ transaction_read_only: string }>('SHOW transaction_read_only');
    return rows[0]?.transaction_read_only === 'off';
  }
  if (attrs === 'primary') {
    const { rows } = await client.query<{ recovery: boolean }>('SELECT pg_is_in_recovery() AS recovery');
    return rows[0]?.recovery === false;
  }
  return true;
}

export function createFailoverPool(target: DatabaseTarget, options: pg.PoolConfig): pg.Pool {
  const { hosts, targetSessionAttrs } = target;
  const selector = createHostSelector(hosts.length);

  class FailoverClient extends pg.Client {
    readonly hostIndex: number;

    constructor(config: pg.ClientConfig = {}) {
      const index = selector.preferred();
      super({ ...config, connectionString: target.urlFor(hosts[index]!) });
      this.hostIndex = index;
    }

    override connect(): Promise<pg.Client>;
    override connect(callback: (err: Error) => void): void;
    override connect(callback?: (err: Error) => void): Promise<pg.Client> | void {
      const done = this.connectChecked();
      if (!callback) return done;
      done.then(() => callback(undefined as unknown as Error), (err: Error) => callback(err));
    }

    private async connectChecked(): Promise<pg.Client> {
      const host = hosts[this.hostIndex]!;
      // Until the pool attaches its own listener, an error event on a connection being checked
      // must not crash the process: the check's own query fails, and that is what counts.
      const ignore = () => {};
      this.on('error', ignore);
      try {
        await super.connect();
        if (!(await acceptable(this, targetSessionAttrs))) throw new ReadOnlyHostError(hostName(host), targetSessionAttrs);
        selector.accepted(this.hostIndex);
        return this;
      } catch (err) {
        selector.failed(this.hostIndex);
        await this.end().catch(() => {});
        throw mark(err);
      } finally {
        this.off('error', ignore);
      }
    }
  }

  class FailoverPool extends pg.Pool {
    constructor() {
      super({ ...options, Client: FailoverClient });
    }

    // pg-pool's query() acquires through connect(callback), so both forms go through the host list.
    override connect(): Promise<pg.PoolClient>;
    override connect(callback: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void): void;
    override connect(callback?: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void): Promise<pg.PoolClient> | void {
      const acquire = async (): Promise<pg.PoolClient> => {
        let last: unknown;
        for (let attempt = 0; attempt < hosts.length; attempt += 1) {
          try {
            return await super.connect();
          } catch (err) {
            if (!hostFailure(err)) throw err;
            last = err;
          }
        }
        throw last;
      };
      const done = acquire();
      if (!callback) return done;
      done.then(
        (client) => callback(undefined, client, (release?: unknown) => client.release(release as Error | boolean | undefined)),
        (err: Error) => callback(err, undefined, () => {}),
      );
    }
  }

  return new FailoverPool();
}

/**
 * The pool for DATABASE_URL: node-postgres's own for one host, the failover pool for a host list
 * or a `target_session_attrs` other than `any`.
 */
export function createPool(url: string, options: pg.PoolConfig): pg.Pool {
  const target = parseDatabaseUrl(url);
  return target.failover ? createFailoverPool(target, options) : new pg.Pool({ ...options, connectionString: url });
}
