import type { Queryable } from '../db.ts';

export interface LinkEventRow {
  id: string;
  member_id: string;
  account_id: string;
  created_at: Date;
  attempts: number;
}

/**
 * "Member linked" events for the Trello relying party (`trello_link_events`, migration 0013):
 * written in the linking transaction, delivered by the link webhook (decision 0014).
 */
export function createTrelloLinkEventQueries(db: Queryable) {
  return {
    async enqueueLinkEvent(tx: Queryable, memberId: string, accountId: string, now: Date): Promise<void> {
      await tx.query('INSERT INTO trello_link_events (member_id, account_id, created_at, next_attempt_at) VALUES ($1, $2, $3, $3)', [memberId, accountId, now]);
    },

    /**
     * Claims due events for delivery: their next attempt moves `leaseSeconds` ahead, so another
     * instance does not send them meanwhile, and a process that dies mid-send is retried later.
     */
    async claimDueLinkEvents(now: Date, leaseSeconds: number, limit: number): Promise<LinkEventRow[]> {
      const { rows } = await db.query<LinkEventRow>(
        `UPDATE trello_link_events SET next_attempt_at = $1::timestamptz + make_interval(secs => $2)
         WHERE id IN (SELECT id FROM trello_link_events WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1
                      ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING id, member_id, account_id, created_at, attempts`,
        [now, leaseSeconds, limit],
      );
      return rows;
    },

    async linkEventDelivered(id: string, now: Date): Promise<void> {
      await db.query('UPDATE trello_link_events SET delivered_at = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1', [id, now]);
    },

    async linkEventFailed(id: string, error: string, nextAttemptAt: Date | null, now: Date): Promise<void> {
      await db.query(
        'UPDATE trello_link_events SET attempts = attempts + 1, last_error = $2, next_attempt_at = COALESCE($3, next_attempt_at), failed_at = CASE WHEN $3::timestamptz IS NULL THEN $4::timestamptz END WHERE id = $1',
        [id, error.slice(0, 500), nextAttemptAt, now],
      );
    },

    async linkEvents(memberId: string): Promise<(LinkEventRow & { delivered_at: Date | null; failed_at: Date | null; last_error: string | null })[]> {
      const { rows } = await db.query<LinkEventRow & { delivered_at: Date | null; failed_at: Date | null; last_error: string | null }>(
        'SELECT id, member_id, account_id, created_at, attempts, delivered_at, failed_at, last_error FROM trello_link_events WHERE member_id = $1 ORDER BY id',
        [memberId],
      );
      return rows;
    },
  };
}

export type TrelloLinkEventQueries = ReturnType<typeof createTrelloLinkEventQueries>;
