import type { DeferredWrite, Queryable } from '../db.ts';

export interface ThrottleState {
  key: string;
  failures: number;
  blocked_until: Date | null;
}

/** `n` failures with `free` allowed: the wait in seconds, doubling, capped (the exponent too, so it never overflows). */
const waitSql = (n: string, free: string) =>
  `CASE WHEN ${n} > ${free} THEN $3::timestamptz + make_interval(secs => least($6::float8, $5::float8 * power(2, least(${n} - ${free} - 1, 40)))) END`;

const WAITING = 'throttles.blocked_until > $3 AND throttles.last_failure_at >= $4';
const NEXT = 'CASE WHEN throttles.last_failure_at < $4 THEN 1 ELSE throttles.failures + 1 END';
const RESERVE_CONFLICT = `ON CONFLICT (key) DO UPDATE SET
           failures = CASE WHEN ${WAITING} THEN throttles.failures ELSE ${NEXT} END,
           free_attempts = excluded.free_attempts,
           blocked_until = CASE WHEN ${WAITING} THEN throttles.blocked_until ELSE ${waitSql(NEXT, 'excluded.free_attempts')} END,
           last_failure_at = CASE WHEN ${WAITING} THEN throttles.last_failure_at ELSE excluded.last_failure_at END,
           last_attempt = CASE WHEN ${WAITING} THEN throttles.last_attempt ELSE excluded.last_attempt END
         RETURNING key, failures, blocked_until, last_attempt = $7 AS counted`;

/**
 * `reserve` with the client address's key, as two CTEs — `address` (that key's wait, if one
 * runs) and `reserved` (the subject's counter, counted unless the address waits or `unless`, an
 * SQL condition, holds) — over parameters `$1…$8`: the key, its allowance, now, the window's
 * start, the base and longest waits, the attempt's token, the address's key (NULL: none). Used
 * by `reserve` and by the password step's one statement (src/persistence/queries/password-step.ts).
 */
export const reservationCtes = (unless: string) => `address AS (
           SELECT blocked_until FROM throttles WHERE key = $8 AND last_failure_at >= $4 AND blocked_until > $3
         ), reserved AS (
           INSERT INTO throttles (key, failures, free_attempts, blocked_until, last_failure_at, last_attempt)
           SELECT $1, 1, $2::int, ${waitSql('1', '$2::int')}, $3::timestamptz, $7::text WHERE NOT EXISTS (SELECT 1 FROM address) AND NOT (${unless})
           ${RESERVE_CONFLICT}
         )`;

/** Failure counters shared by every instance (migration 0011). */
export function createThrottleQueries(db: Queryable) {
  const clearing = (keys: string[]): DeferredWrite => ({ sql: 'DELETE FROM throttles WHERE key = ANY($1::text[])', params: [keys] });

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
      const { rows } = await db.query<ThrottleState>(
        `INSERT INTO throttles (key, failures, free_attempts, blocked_until, last_failure_at)
         SELECT k, 1, f, ${waitSql('1', 'f')}, $3 FROM unnest($1::text[], $2::int[]) AS t(k, f)
         ON CONFLICT (key) DO UPDATE SET
           failures = ${next},
           free_attempts = excluded.free_attempts,
           blocked_until = ${waitSql(next, 'excluded.free_attempts')},
           last_failure_at = excluded.last_failure_at
         RETURNING key, failures, blocked_until`,
        [entries.map((e) => e.key), entries.map((e) => e.free), now, since, baseSeconds, maxSeconds],
      );
      return rows;
    },

    /**
     * Counts an attempt *before* it is checked, unless the key is already waiting. The row lock
     * of the upsert serialises concurrent attempts: of many sent at once, only those within the
     * allowance are counted and let through; the one that exceeds it sets the wait, and every
     * later one sees it. `counted` is false for an attempt refused because the key was waiting.
     *
     * With `unlessAddress` (the client address's key), in the same statement: when that key is
     * waiting (a failure since `since`, a wait not yet over at `now`), nothing is counted and
     * `address_blocked_until` says until when — the read `find` would have made first, without
     * its own round trip on every login.
     */
    async reserve(entry: { key: string; free: number; unlessAddress?: string | undefined }, token: string, now: Date, since: Date, baseSeconds: number, maxSeconds: number): Promise<ThrottleState & { counted: boolean; address_blocked_until?: Date | null }> {
      const params = [entry.key, entry.free, now, since, baseSeconds, maxSeconds, token];
      if (entry.unlessAddress === undefined) {
        const { rows } = await db.query<ThrottleState & { counted: boolean }>(
          `INSERT INTO throttles (key, failures, free_attempts, blocked_until, last_failure_at, last_attempt)
           VALUES ($1, 1, $2, ${waitSql('1', '$2::int')}, $3, $7)
           ${RESERVE_CONFLICT}`,
          params,
        );
        return rows[0]!;
      }
      const { rows } = await db.query<ThrottleState & { counted: boolean | null; address_blocked_until: Date | null }>(
        `WITH ${reservationCtes('false')}
         SELECT (SELECT blocked_until FROM address) AS address_blocked_until, r.key, r.failures, r.blocked_until, coalesce(r.counted, false) AS counted
         FROM (SELECT 1) AS one LEFT JOIN reserved r ON true`,
        [...params, entry.unlessAddress],
      );
      return rows[0]! as ThrottleState & { counted: boolean; address_blocked_until: Date | null };
    },

    /** Takes back the attempt `token` reserved on `key`, if it is still the last one there. */
    async release(key: string, token: string): Promise<void> {
      await db.query(
        `UPDATE throttles SET failures = greatest(failures - 1, 0),
           blocked_until = CASE WHEN failures - 1 > free_attempts THEN blocked_until END,
           last_attempt = NULL
         WHERE key = $1 AND last_attempt = $2`,
        [key, token],
      );
    },

    async clear(keys: string[]): Promise<void> {
      const { sql, params } = clearing(keys);
      await db.query(sql, params);
    },

    /** `clear` as a statement to hand to a request's batch. */
    clearing,

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
