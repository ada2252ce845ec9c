import type { Queryable } from '../db.ts';

export type MailStatus = 'pending' | 'sending' | 'sent' | 'failed';

export interface OutboxRow {
  id: string;
  recipient: string;
  template: string;
  subject: string;
  body_sealed: string | null;
  status: MailStatus;
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  sent_at: Date | null;
  created_at: Date;
}

const COLUMNS = 'id, recipient, template, subject, body_sealed, status, attempts, next_attempt_at, last_error, sent_at, created_at';

/** The outbox table. `insert` takes the caller's transaction; the rest belong to the delivery worker. */
export function createMailOutboxQueries(db: Queryable) {
  return {
    async insert(tx: Queryable, row: { id: string; recipient: string; template: string; subject: string; bodySealed: string; now: Date }): Promise<void> {
      await tx.query(
        `INSERT INTO mail_outbox (id, recipient, template, subject, body_sealed, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6)`,
        [row.id, row.recipient, row.template, row.subject, row.bodySealed, row.now],
      );
    },

    /** Several messages in one statement (the bulk migration's batch), in the caller's transaction. */
    async insertMany(tx: Queryable, rows: { id: string; recipient: string; template: string; subject: string; bodySealed: string; now: Date }[]): Promise<void> {
      if (!rows.length) return;
      await tx.query(
        `INSERT INTO mail_outbox (id, recipient, template, subject, body_sealed, next_attempt_at)
         SELECT m.id, m.recipient, m.template, m.subject, m.body_sealed, m.next_attempt_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) WITH ORDINALITY AS m (id, recipient, template, subject, body_sealed, next_attempt_at, n)
         ORDER BY m.n`,
        [rows.map((r) => r.id), rows.map((r) => r.recipient), rows.map((r) => r.template), rows.map((r) => r.subject), rows.map((r) => r.bodySealed), rows.map((r) => r.now)],
      );
    },

    /**
     * Claims up to `limit` due messages for `leaseSeconds`: a message whose sender died mid-way
     * becomes due again when the lease runs out. SKIP LOCKED lets several instances share the work.
     */
    async claimDue(now: Date, limit: number, leaseSeconds: number): Promise<OutboxRow[]> {
      const { rows } = await db.query<OutboxRow>(
        `UPDATE mail_outbox SET status = 'sending', attempts = attempts + 1, locked_until = $1::timestamptz + make_interval(secs => $3)
         WHERE id IN (
           SELECT id FROM mail_outbox
           WHERE status IN ('pending', 'sending') AND next_attempt_at <= $1 AND (locked_until IS NULL OR locked_until <= $1)
           ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING ${COLUMNS}`,
        [now, limit, leaseSeconds],
      );
      return rows;
    },

    /** Gives back claimed messages that were not attempted (the worker is stopping): due again at once, for any instance. */
    async release(ids: string[]): Promise<void> {
      if (!ids.length) return;
      await db.query(
        `UPDATE mail_outbox SET status = 'pending', attempts = attempts - 1, locked_until = NULL WHERE id = ANY($1::text[]) AND status = 'sending'`,
        [ids],
      );
    },

    /** Accepted by the server: the body (and any one-time link in it) is erased. */
    async markSent(id: string, now: Date): Promise<void> {
      await db.query(
        `UPDATE mail_outbox SET status = 'sent', sent_at = $2, body_sealed = NULL, locked_until = NULL, last_error = NULL WHERE id = $1`,
        [id, now],
      );
    },

    async markRetry(id: string, nextAttemptAt: Date, error: string): Promise<void> {
      await db.query(
        `UPDATE mail_outbox SET status = 'pending', next_attempt_at = $2, locked_until = NULL, last_error = $3 WHERE id = $1`,
        [id, nextAttemptAt, error],
      );
    },

    async markFailed(id: string, error: string): Promise<void> {
      await db.query(`UPDATE mail_outbox SET status = 'failed', locked_until = NULL, last_error = $2 WHERE id = $1`, [id, error]);
    },

    async listFailed(limit: number): Promise<OutboxRow[]> {
      const { rows } = await db.query<OutboxRow>(`SELECT ${COLUMNS} FROM mail_outbox WHERE status = 'failed' ORDER BY created_at LIMIT $1`, [limit]);
      return rows;
    },

    /** Puts failed messages back in the queue (all of them, or the listed ids). */
    async retryFailed(now: Date, ids?: string[]): Promise<number> {
      const { rowCount } = ids?.length
        ? await db.query(`UPDATE mail_outbox SET status = 'pending', next_attempt_at = $1, attempts = 0 WHERE status = 'failed' AND id = ANY($2::text[])`, [now, ids])
        : await db.query(`UPDATE mail_outbox SET status = 'pending', next_attempt_at = $1, attempts = 0 WHERE status = 'failed'`, [now]);
      return rowCount;
    },

    /** Messages still to send (pending, or claimed by a worker now), for the CLI to report. */
    async countWaiting(): Promise<number> {
      const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM mail_outbox WHERE status IN ('pending', 'sending')`);
      return rows[0]?.n ?? 0;
    },

    async find(id: string): Promise<OutboxRow | undefined> {
      const { rows } = await db.query<OutboxRow>(`SELECT ${COLUMNS} FROM mail_outbox WHERE id = $1`, [id]);
      return rows[0];
    },
  };
}

export type MailOutboxQueries = ReturnType<typeof createMailOutboxQueries>;
