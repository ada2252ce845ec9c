import type { Database, Queryable } from './db.ts';

/**
 * The database with a hook for writes to some tables, so that in-process caches of what those
 * tables hold can be dropped the moment this process changes them (the account cache of the
 * token endpoints, src/oidc/token-accounts.ts). Other instances' writes are not seen here: such
 * caches keep entries for a short, bounded time for that reason.
 *
 * A statement writes a watched table when it is `INSERT INTO`, `UPDATE`, `DELETE FROM` or
 * `TRUNCATE` of it, anywhere in the statement (a writing CTE included; `ON CONFLICT … DO
 * UPDATE SET` names no table). Inside a transaction the hook runs at the statement and again
 * once the transaction has ended, so a reader that filled a cache with the old row in between
 * (before the commit) does not keep it.
 */
const WRITE = /\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+(?:ONLY\s+)?"?([a-z_][a-z0-9_]*)/gi;
/** Reads never write: they are told apart by their first word, without scanning them. */
const READ = /^\s*SELECT\b/i;

export function watchWrites(db: Database, tables: (table: string) => boolean, onWrite: () => void): Database {
  // The answer per statement text, remembered: the texts are the queries' constants (a batch's
  // text varies only with its number of parts), and scanning one costs more than the hot path's
  // other per-statement work. Bounded, in case a caller builds texts with values in them.
  const known = new Map<string, boolean>();
  const writes = (sql: string): boolean => {
    if (READ.test(sql)) return false;
    let answer = known.get(sql);
    if (answer === undefined) {
      answer = false;
      for (const match of sql.matchAll(WRITE)) if (tables(match[1]!.toLowerCase())) answer = true;
      if (known.size >= 1000) known.clear();
      known.set(sql, answer);
    }
    return answer;
  };
  const watched = (q: Queryable, wrote?: { yes: boolean }): Queryable => ({
    async query(sql, params) {
      if (!writes(sql)) return q.query(sql, params);
      if (wrote) wrote.yes = true;
      onWrite();
      try {
        return await q.query(sql, params);
      } finally {
        onWrite();
      }
    },
    async exec(sql) {
      // Scripts (migrations) change anything.
      onWrite();
      await q.exec(sql);
    },
  }) as Queryable;
  const outside = watched(db);
  return {
    ...db,
    query: outside.query,
    exec: outside.exec,
    async transaction(fn) {
      const wrote = { yes: false };
      try {
        return await db.transaction((tx) => fn(watched(tx, wrote) as never));
      } finally {
        if (wrote.yes) onWrite();
      }
    },
  };
}
