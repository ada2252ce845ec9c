import type { Queryable } from '../db.ts';

/**
 * Addresses retired for an account when it was linked to a Trello member (`retired_emails`,
 * migration 0013): reserved for that account, refused at login.
 */
export function createRetiredEmailQueries(db: Queryable) {
  return {
    async retire(tx: Queryable, accountId: string, emails: string[], reason: string, now: Date): Promise<void> {
      if (!emails.length) return;
      await tx.query(
        `INSERT INTO retired_emails (email, account_id, retired_at, reason) SELECT e, $2, $3, $4 FROM unnest($1::text[]) AS e
         ON CONFLICT (lower(email)) DO NOTHING`,
        [emails, accountId, now, reason],
      );
    },

    async findRetired(email: string, tx: Queryable = db): Promise<{ email: string; account_id: string } | undefined> {
      const { rows } = await tx.query<{ email: string; account_id: string }>('SELECT email, account_id FROM retired_emails WHERE lower(email) = lower($1)', [email]);
      return rows[0];
    },

    async retiredOf(accountId: string): Promise<string[]> {
      const { rows } = await db.query<{ email: string }>('SELECT email FROM retired_emails WHERE account_id = $1 ORDER BY email', [accountId]);
      return rows.map((r) => r.email);
    },

    /** The addresses a linked account answers to: its own and those retired for it. */
    async addressesOf(accountId: string): Promise<{ email: string | undefined; retired: string[] }> {
      const { rows } = await db.query<{ email: string | null; retired: string[] | null }>(
        `SELECT (SELECT email FROM accounts WHERE id = $1) AS email,
                (SELECT array_agg(email ORDER BY email) FROM retired_emails WHERE account_id = $1) AS retired`,
        [accountId],
      );
      return { email: rows[0]?.email ?? undefined, retired: rows[0]?.retired ?? [] };
    },

    /** Erasure of closed accounts: their retired addresses are released. */
    async forgetAccounts(accountIds: string[]): Promise<void> {
      if (!accountIds.length) return;
      await db.query('DELETE FROM retired_emails WHERE account_id = ANY($1::text[])', [accountIds]);
    },
  };
}

export type RetiredEmailQueries = ReturnType<typeof createRetiredEmailQueries>;
