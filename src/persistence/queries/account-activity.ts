import type { DeferredWrite, Queryable } from '../db.ts';

export interface SessionListing {
  session_uid: string;
  login_ts: number | null;
  user_agent: string | null;
  ip: string | null;
  last_seen_at: Date | null;
  clients: string[];
}

export interface ConnectedApp {
  client_id: string;
  name: string | null;
  scopes: string;
}

/** Sessions and grants of one account, for the settings pages. */
export function createAccountActivityQueries(db: Queryable) {
  /** The session's device, address and last use, as a statement to run now or to hand to a request's batch. */
  const touching = (row: { sessionUid: string; accountId: string; userAgent: string | null; ip: string | null; now: Date }): DeferredWrite => ({
    sql: `INSERT INTO session_activity (session_uid, account_id, user_agent, ip, created_at, last_seen_at)
          VALUES ($1::text, $2::text, $3::text, $4::text, $5::timestamptz, $5::timestamptz)
          ON CONFLICT (session_uid) DO UPDATE SET account_id = excluded.account_id, user_agent = excluded.user_agent,
            ip = excluded.ip, last_seen_at = excluded.last_seen_at`,
    params: [row.sessionUid, row.accountId, row.userAgent, row.ip, row.now],
  });

  return {
    touching,

    async touch(row: { sessionUid: string; accountId: string; userAgent: string | null; ip: string | null; now: Date }): Promise<void> {
      const { sql, params } = touching(row);
      await db.query(sql, params);
    },

    /** When the session was last used (an authorization, or one of our pages), if recorded. */
    async lastSeen(sessionUid: string): Promise<Date | undefined> {
      const { rows } = await db.query<{ last_seen_at: Date | null }>('SELECT last_seen_at FROM session_activity WHERE session_uid = $1', [sessionUid]);
      return rows[0]?.last_seen_at ?? undefined;
    },

    /** Marks the session used now (our own pages, under a policy's idle timeout). */
    async seen(sessionUid: string, now: Date): Promise<void> {
      await db.query('UPDATE session_activity SET last_seen_at = $2 WHERE session_uid = $1 AND last_seen_at < $2', [sessionUid, now]);
    },

    /** Live sessions, most recently used first, with the clients each was used for. */
    async sessions(accountId: string, now: Date): Promise<SessionListing[]> {
      const { rows } = await db.query<{ session_uid: string; payload: { loginTs?: number; authorizations?: Record<string, unknown> }; user_agent: string | null; ip: string | null; last_seen_at: Date | null }>(
        `SELECT s.session_uid, s.payload, a.user_agent, a.ip, a.last_seen_at
         FROM oidc_payloads s LEFT JOIN session_activity a ON a.session_uid = s.session_uid
         WHERE s.account_id = $1 AND s.model = 'Session' AND (s.expires_at IS NULL OR s.expires_at > $2)
         ORDER BY a.last_seen_at DESC NULLS LAST`,
        [accountId, now],
      );
      return rows.map((r) => ({
        session_uid: r.session_uid,
        login_ts: r.payload.loginTs ?? null,
        user_agent: r.user_agent,
        ip: r.ip,
        last_seen_at: r.last_seen_at,
        clients: Object.keys(r.payload.authorizations ?? {}),
      }));
    },

    /** Clients the account has granted access to, with the scopes granted (all grants merged). */
    async connectedApps(accountId: string, now: Date): Promise<ConnectedApp[]> {
      const { rows } = await db.query<{ client_id: string; name: string | null; scopes: string | null }>(
        `SELECT g.payload->>'clientId' AS client_id, c.name, string_agg(DISTINCT g.payload->'openid'->>'scope', ' ') AS scopes
         FROM oidc_payloads g LEFT JOIN clients c ON c.client_id = g.payload->>'clientId'
         WHERE g.account_id = $1 AND g.model = 'Grant' AND (g.expires_at IS NULL OR g.expires_at > $2)
         GROUP BY g.payload->>'clientId', c.name
         ORDER BY c.name NULLS LAST`,
        [accountId, now],
      );
      return rows.map((r) => ({ client_id: r.client_id, name: r.name, scopes: [...new Set((r.scopes ?? '').split(' ').filter(Boolean))].join(' ') }));
    },

    /** Revokes every grant of the account for one client, with their tokens and codes. */
    async revokeClient(accountId: string, clientId: string): Promise<number> {
      const { rowCount } = await db.query(
        `DELETE FROM oidc_payloads
         WHERE account_id = $1 AND payload->>'clientId' = $2
           AND model IN ('Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode')`,
        [accountId, clientId],
      );
      return rowCount;
    },

    /**
     * Deletes up to `limit` records of sessions that ended or expired: no live `Session` row has
     * their uid any more. A record used after `keepAfter` stays whatever the session row says
     * (the engine writes its session as the request ends, after the record is made).
     * Rows another instance is deleting are skipped, not waited for.
     */
    async pruneEnded(now: Date, keepAfter: Date, limit: number): Promise<number> {
      const { rowCount } = await db.query(
        `DELETE FROM session_activity WHERE ctid = ANY(ARRAY(
           SELECT a.ctid FROM session_activity a
           WHERE a.last_seen_at < $2
             AND NOT EXISTS (
               SELECT 1 FROM oidc_payloads s
               WHERE s.session_uid = a.session_uid AND s.model = 'Session' AND (s.expires_at IS NULL OR s.expires_at > $1))
           LIMIT $3 FOR UPDATE OF a SKIP LOCKED))`,
        [now, keepAfter, limit],
      );
      return rowCount;
    },

    /** Drops the device and address records of erased accounts. */
    async forgetAccounts(accountIds: string[]): Promise<void> {
      if (accountIds.length) await db.query('DELETE FROM session_activity WHERE account_id = ANY($1::text[])', [accountIds]);
    },
  };
}

export type AccountActivityQueries = ReturnType<typeof createAccountActivityQueries>;
