import type { DeferredWrite, Queryable } from '../db.ts';

export interface SecurityEventRow {
  id: string; // bigint arrives as a string
  occurred_at: Date;
  type: string;
  reason: string | null;
  account_id: string | null;
  client_id: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  detail: Record<string, unknown> | null;
}

export interface NewSecurityEvent {
  occurredAt: Date;
  type: string;
  reason?: string | null | undefined;
  accountId?: string | null | undefined;
  clientId?: string | null | undefined;
  ip?: string | null | undefined;
  userAgent?: string | null | undefined;
  requestId?: string | null | undefined;
  detail?: Record<string, unknown> | null | undefined;
}

/** The append-only audit trail (migration 0012). */
export function createSecurityEventQueries(db: Queryable) {
  /** The insert of one event, as a statement to run now or to hand to a request's batch. */
  const insertion = (event: NewSecurityEvent): DeferredWrite => ({
    sql: `INSERT INTO security_events (occurred_at, type, reason, account_id, client_id, ip, user_agent, request_id, detail)
          VALUES ($1::timestamptz, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::jsonb)`,
    params: [event.occurredAt, event.type, event.reason ?? null, event.accountId ?? null, event.clientId ?? null, event.ip ?? null,
      event.userAgent?.slice(0, 300) ?? null, event.requestId ?? null, event.detail ? JSON.stringify(event.detail) : null],
  });

  return {
    insertion,

    async insert(event: NewSecurityEvent, tx: Queryable = db): Promise<void> {
      const { sql, params } = insertion(event);
      await tx.query(sql, params);
    },

    /** One page of an account's events, newest first; `before` is the id of the last row of the previous page. */
    async page(accountId: string, limit: number, before?: string): Promise<SecurityEventRow[]> {
      const { rows } = await db.query<SecurityEventRow>(
        `SELECT id, occurred_at, type, reason, account_id, client_id, ip, user_agent, request_id, detail
         FROM security_events WHERE account_id = $1 AND ($2::bigint IS NULL OR id < $2::bigint)
         ORDER BY id DESC LIMIT $3`,
        [accountId, before ?? null, limit],
      );
      return rows;
    },

    /** Erasure of closed accounts: their trail goes with their personal data. */
    async forgetAccounts(accountIds: string[]): Promise<void> {
      if (accountIds.length) await db.query('DELETE FROM security_events WHERE account_id = ANY($1::text[])', [accountIds]);
    },
  };
}

export type SecurityEventQueries = ReturnType<typeof createSecurityEventQueries>;
