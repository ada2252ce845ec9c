import type { Queryable } from '../db.ts';

/** One login interaction's state between requests (migration 0016). */
export interface LoginFlowRow {
  uid_hash: string;
  step: string;
  account_id: string | null;
  amr: string[];
  attempts: number;
  trello: Record<string, unknown> | null;
  expires_at: Date;
}

export interface LoginFlowWrite {
  uidHash: string;
  step: string;
  accountId: string | null;
  amr: string[];
  trello: Record<string, unknown> | null;
  expiresAt: Date;
  now: Date;
}

const COLUMNS = 'uid_hash, step, account_id, amr, attempts, trello, expires_at';

/** The live flow record keyed `uidHash` at `now` (each the SQL naming it): `find`, and the password step's one statement. */
export const loginFlowSql = (uidHash: string, now: string) => `SELECT ${COLUMNS} FROM login_flows WHERE uid_hash = ${uidHash} AND expires_at > ${now}`;

/** Queries of `login_flows`; every lookup is by primary key, the sweep by the expiry index. */
export function createLoginFlowQueries(db: Queryable) {
  return {
    async find(uidHash: string, now: Date): Promise<LoginFlowRow | undefined> {
      const { rows } = await db.query<LoginFlowRow>(loginFlowSql('$1', '$2'), [uidHash, now]);
      return rows[0];
    },

    /**
     * Writes the flow's state in one statement. Moving to another step starts its tries at
     * zero; saving the same step again (a new code sent, the Trello state refined) keeps them.
     */
    async save(write: LoginFlowWrite): Promise<void> {
      await db.query(
        `INSERT INTO login_flows (uid_hash, step, account_id, amr, attempts, trello, expires_at, updated_at)
         VALUES ($1, $2, $3, $4::text[], 0, $5::jsonb, $6, $7)
         ON CONFLICT (uid_hash) DO UPDATE SET
           attempts = CASE WHEN login_flows.step = excluded.step AND login_flows.expires_at > excluded.updated_at THEN login_flows.attempts ELSE 0 END,
           step = excluded.step, account_id = excluded.account_id, amr = excluded.amr,
           trello = excluded.trello, expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
        [write.uidHash, write.step, write.accountId, write.amr, write.trello === null ? null : JSON.stringify(write.trello), write.expiresAt, write.now],
      );
    },

    /**
     * Every login of the account in progress ends (its sessions were just ended: a password reset
     * or change, an undone address change, a closure): a first factor proven before then
     * finishes nothing afterwards.
     */
    async removeForAccount(tx: Queryable, accountId: string): Promise<void> {
      await tx.query('DELETE FROM login_flows WHERE account_id = $1', [accountId]);
    },

    /** Counts a failed try at the current step; the count after it (0 when there is no live flow). */
    async countAttempt(uidHash: string, now: Date): Promise<number> {
      const { rows } = await db.query<{ attempts: number }>(
        'UPDATE login_flows SET attempts = attempts + 1, updated_at = $2 WHERE uid_hash = $1 AND expires_at > $2 RETURNING attempts',
        [uidHash, now],
      );
      return rows[0]?.attempts ?? 0;
    },

    async remove(uidHash: string): Promise<void> {
      await db.query('DELETE FROM login_flows WHERE uid_hash = $1', [uidHash]);
    },

    /** Deletes up to `limit` expired flows; small batches keep locks short while requests run. */
    async sweepExpired(now: Date, limit: number): Promise<number> {
      const { rowCount } = await db.query(
        'DELETE FROM login_flows WHERE uid_hash IN (SELECT uid_hash FROM login_flows WHERE expires_at <= $1 LIMIT $2)',
        [now, limit],
      );
      return rowCount;
    },
  };
}

export type LoginFlowQueries = ReturnType<typeof createLoginFlowQueries>;
