import type { Queryable } from '../db.ts';

export interface ThrottleState {
  key: string;
  failures: number;
  blocked_until: Date | null;
}

/** Failure counters shared by every instance (migration 0011). */
export function createThrottleQueries(db: Queryable) {
  return {
    /** Counters of `keys` with a failure since `since` (older ones are forgotten). */
    async find(keys: string[], since: Date): Promise<ThrottleState[]> {
      const { rows } = await db.query<ThrottleState>(
        'SELECT key, failures, blocked_until FROM throttles WHERE key = ANY($1::text[]) AND last_failure_at >= $2',
        [keys, since],
      );
      return rows;
    },

    /**
     * Counts one failure against each key in one statement, atomically across instances, and
     * sets the wait: none for the first `free` failures, then `baseSeconds` doubling with each
     * failure, never more than `maxSeconds`. A counter quiet since `since` starts again at 1.
     */
    async fail(entries: { key: string; free: number }[], now: Date, since: Date, baseSeconds: number, maxSeconds: number): Promise<ThrottleState[]> {
      const next = 'CASE WHEN throttles.last_failure_at < $4 THEN 1 ELSE throttles.failures + 1 END';
      const wait = (n: string, free: string) =>
        `CASE WHEN ${n} > ${free} THEN $3::timestamptz + make_interval(secs => least($6::float8, $5::float8 * power(2, ${n} - ${free} - 1))) END`;
      const { rows } = await db.query<ThrottleState>(
        `INSERT INTO throttles (key, failures, free_attempts, blocked_until, last_failure_at)
         SELECT k, 1, f, ${wait('1', 'f')}, $3 FROM unnest($1::text[], $2::int[]) AS t(k, f)
         ON CONFLICT (key) DO UPDATE SET
           failures = ${next},
           free_attempts = excluded.free_attempts,
           blocked_until = ${wait(next, 'excluded.free_attempts')},
           last_failure_at = excluded.last_failure_at
         RETURNING key, failures, blocked_until`,
        [entries.map((e) => e.key), entries.map((e) => e.free), now, since, baseSeconds, maxSeconds],
      );
      return rows;
    },

    async clear(keys: string[]): Promise<void> {
      await db.query('DELETE FROM throttles WHERE key = ANY($1::text[])', [keys]);
    },

    async sweep(before: Date, limit: number): Promise<number> {
      const { rowCount } = await db.query(
        'DELETE FROM throttles WHERE key IN (SELECT key FROM throttles WHERE last_failure_at < $1 LIMIT $2)',
        [before, limit],
      );
      return rowCount;
    },
  };
}

export type ThrottleQueries = ReturnType<typeof createThrottleQueries>;
