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

const COLUMNS = 'id, recipient, template, subject, status, attempts, next_attempt_at, last_error, sent_at, created_at';
/** The columns with the body, from `mail_outbox m LEFT JOIN mail_outbox_bodies b` (NULL once sent). */
const WITH_BODY = 'm.id, m.recipient, m.template, m.subject, b.body_sealed, m.status, m.attempts, m.next_attempt_at, m.last_error, m.sent_at, m.created_at';

/**
 * The outbox: `mail_outbox` (one row per message: recipient, subject, state) and
 * `mail_outbox_bodies` (the sealed body, deleted once the message is accepted; decision 0054).
 * `insert` takes the caller's transaction; the rest belong to the delivery worker and the sweeper.
 */
export function createMailOutboxQueries(db: Queryable) {
  return {
    async insert(tx: Queryable, row: { id: string; recipient: string; template: string; subject: string; bodySealed: string; now: Date }): Promise<void> {
      // One statement (one round trip in the caller's transaction): the body's row refers to the message's.
      await tx.query(
        `WITH m AS (INSERT INTO mail_outbox (id, recipient, template, subject, next_attempt_at) VALUES ($1, $2, $3, $4, $6) RETURNING id)
         INSERT INTO mail_outbox_bodies (mail_id, body_sealed) SELECT id, $5 FROM m`,
        [row.id, row.recipient, row.template, row.subject, row.bodySealed, row.now],
      );
    },

    /** Several messages in one statement (the bulk migration's batch), in the caller's transaction. */
    async insertMany(tx: Queryable, rows: { id: string; recipient: string; template: string; subject: string; bodySealed: string; now: Date }[]): Promise<void> {
      if (!rows.length) return;
      await tx.query(
        `WITH given AS (
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) WITH ORDINALITY AS g (id, recipient, template, subject, body_sealed, next_attempt_at, n)),
         m AS (
           INSERT INTO mail_outbox (id, recipient, template, subject, next_attempt_at)
           SELECT id, recipient, template, subject, next_attempt_at FROM given ORDER BY n RETURNING id)
         INSERT INTO mail_outbox_bodies (mail_id, body_sealed) SELECT given.id, given.body_sealed FROM given JOIN m ON m.id = given.id`,
        [rows.map((r) => r.id), rows.map((r) => r.recipient), rows.map((r) => r.template), rows.map((r) => r.subject), rows.map((r) => r.bodySealed), rows.map((r) => r.now)],
      );
    },

    /**
     * Claims up to `limit` due messages for `leaseSeconds`: a message whose sender died mid-way
     * becomes due again when the lease runs out. SKIP LOCKED lets several instances share the work.
     */
    async claimDue(now: Date, limit: number, leaseSeconds: number): Promise<OutboxRow[]> {
      const { rows } = await db.query<OutboxRow>(
        `WITH claimed AS (
           UPDATE mail_outbox SET status = 'sending', attempts = attempts + 1, locked_until = $1::timestamptz + make_interval(secs => $3)
           WHERE id IN (
             SELECT id FROM mail_outbox
             WHERE status IN ('pending', 'sending') AND next_attempt_at <= $1 AND (locked_until IS NULL OR locked_until <= $1)
             ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           RETURNING ${COLUMNS})
         SELECT ${WITH_BODY} FROM claimed m LEFT JOIN mail_outbox_bodies b ON b.mail_id = m.id ORDER BY m.next_attempt_at`,
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

    /**
     * Accepted by the server: the body (and any one-time link in it) is deleted — a DELETE, whose
     * space VACUUM gives back, where erasing it by UPDATE left a dead copy of it for good.
     */
    async markSent(id: string, now: Date): Promise<void> {
      await db.query(
        `WITH sent AS (
           UPDATE mail_outbox SET status = 'sent', sent_at = $2, locked_until = NULL, last_error = NULL WHERE id = $1 RETURNING id)
         DELETE FROM mail_outbox_bodies WHERE mail_id IN (SELECT id FROM sent)`,
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
      const { rows } = await db.query<OutboxRow>(
        `SELECT ${WITH_BODY} FROM mail_outbox m LEFT JOIN mail_outbox_bodies b ON b.mail_id = m.id WHERE m.status = 'failed' ORDER BY m.created_at LIMIT $1`,
        [limit],
      );
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
      const { rows } = await db.query<OutboxRow>(`SELECT ${WITH_BODY} FROM mail_outbox m LEFT JOIN mail_outbox_bodies b ON b.mail_id = m.id WHERE m.id = $1`, [id]);
      return rows[0];
    },

    /**
     * Deletes up to `limit` records of messages sent before `before` (the retention period),
     * oldest first; rows another instance is deleting are skipped, not waited for.
     */
    async pruneSent(before: Date, limit: number): Promise<number> {
      const { rowCount } = await db.query(
        `DELETE FROM mail_outbox WHERE id IN (
           SELECT id FROM mail_outbox WHERE status = 'sent' AND sent_at < $1 ORDER BY sent_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [before, limit],
      );
      return rowCount;
    },

    /**
     * Makes the space of deleted bodies and of the records' older versions reusable now, without
     * waiting for autovacuum (which an operator may have turned off for a bulk load). SKIP_LOCKED:
     * when another instance is vacuuming the same table, this one does not queue behind it. Not in
     * a transaction (VACUUM cannot run in one); a role that does not own the tables gets a warning
     * from PostgreSQL and nothing is done.
     */
    async vacuum(): Promise<void> {
      await db.exec('VACUUM (SKIP_LOCKED) mail_outbox_bodies, mail_outbox');
    },
  };
}

export type MailOutboxQueries = ReturnType<typeof createMailOutboxQueries>;
