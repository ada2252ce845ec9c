import type { Queryable } from '../db.ts';

export function createEmailChangeQueries(db: Queryable) {
  return {
    /** One pending change per account: a new request replaces the previous one. */
    async replace(tx: Queryable, row: { accountId: string; newEmail: string; tokenHash: string; now: Date; expiresAt: Date }): Promise<void> {
      await tx.query(
        `INSERT INTO email_changes (account_id, new_email, token_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (account_id) DO UPDATE SET new_email = excluded.new_email, token_hash = excluded.token_hash,
           expires_at = excluded.expires_at, created_at = excluded.created_at`,
        [row.accountId, row.newEmail, row.tokenHash, row.expiresAt, row.now],
      );
    },

    /** Takes the pending change of a token (single use); undefined if unknown or expired. */
    async take(tx: Queryable, tokenHash: string, now: Date): Promise<{ account_id: string; new_email: string } | undefined> {
      const { rows } = await tx.query<{ account_id: string; new_email: string }>(
        'DELETE FROM email_changes WHERE token_hash = $1 AND expires_at > $2 RETURNING account_id, new_email',
        [tokenHash, now],
      );
      return rows[0];
    },

    /** The new address of a token's pending change, without taking it; undefined if unknown or expired. */
    async peek(tokenHash: string, now: Date): Promise<string | undefined> {
      const { rows } = await db.query<{ new_email: string }>('SELECT new_email FROM email_changes WHERE token_hash = $1 AND expires_at > $2', [tokenHash, now]);
      return rows[0]?.new_email;
    },

    async pending(accountId: string, now: Date): Promise<string | undefined> {
      const { rows } = await db.query<{ new_email: string }>('SELECT new_email FROM email_changes WHERE account_id = $1 AND expires_at > $2', [accountId, now]);
      return rows[0]?.new_email;
    },
  };
}

export type EmailChangeQueries = ReturnType<typeof createEmailChangeQueries>;
