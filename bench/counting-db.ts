import type { Database, Queryable } from '../src/persistence/db.ts';

/**
 * SQL statements and commits a server issues, counted at the database layer it was given.
 *
 * A commit is what makes the database write its log to disk (on a server with
 * `synchronous_commit`, one fsync each): a committed `transaction()` that wrote, or a writing
 * statement outside one (autocommit). A read outside a transaction commits nothing worth counting.
 */
export interface SqlCounts {
  statements: number;
  commits: number;
}

const WRITING = /^\s*(INSERT|UPDATE|DELETE|WITH|MERGE)/i;

/** `db` with every statement counted into `counts` (and, when given, each one handed to `onStatement`). */
export function countingDatabase(db: Database, counts: SqlCounts, onStatement?: (sql: string, inTransaction: boolean) => void): Database {
  const inside = (q: Queryable, wrote: { yes: boolean }): Queryable => ({
    query: (sql, params) => {
      counts.statements += 1;
      if (WRITING.test(sql)) wrote.yes = true;
      onStatement?.(sql, true);
      return q.query(sql, params);
    },
    exec: (sql) => q.exec(sql),
  }) as Queryable;
  return {
    ...db,
    query: (sql, params) => {
      counts.statements += 1;
      if (WRITING.test(sql)) counts.commits += 1;
      onStatement?.(sql, false);
      return db.query(sql, params);
    },
    transaction: async (fn) => {
      const wrote = { yes: false };
      const result = await db.transaction((tx) => fn(inside(tx, wrote) as never));
      if (wrote.yes) counts.commits += 1;
      return result;
    },
  };
}
