import type { Queryable } from '../db.ts';

export interface UndoRow {
  account_id: string;
  old_email: string;
  new_email: string;
  changed_at: Date;
  claimed_by: string | null;
}

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

    /** A pending change is dropped (the account's address was put back: an intruder's request goes). */
    async cancel(tx: Queryable, accountId: string): Promise<void> {
      await tx.query('DELETE FROM email_changes WHERE account_id = $1', [accountId]);
    },

    /** The undo link of a change just made (decision 0085). */
    async addUndo(tx: Queryable, row: { tokenHash: string; accountId: string; oldEmail: string; newEmail: string; changedAt: Date; claimedBy: string | undefined; expiresAt: Date }): Promise<void> {
      await tx.query(
        'INSERT INTO email_change_undos (token_hash, account_id, old_email, new_email, changed_at, claimed_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [row.tokenHash, row.accountId, row.oldEmail, row.newEmail, row.changedAt, row.claimedBy ?? null, row.expiresAt],
      );
    },

    /** What an undo link would put back, without taking it; undefined if unknown, used or expired. */
    async peekUndo(tokenHash: string, now: Date): Promise<UndoRow | undefined> {
      const { rows } = await db.query<UndoRow>('SELECT account_id, old_email, new_email, changed_at, claimed_by FROM email_change_undos WHERE token_hash = $1 AND expires_at > $2', [tokenHash, now]);
      return rows[0];
    },

    /** Takes an undo link (single use); undefined if unknown, used or expired. */
    async takeUndo(tx: Queryable, tokenHash: string, now: Date): Promise<UndoRow | undefined> {
      const { rows } = await tx.query<UndoRow>(
        'DELETE FROM email_change_undos WHERE token_hash = $1 AND expires_at > $2 RETURNING account_id, old_email, new_email, changed_at, claimed_by',
        [tokenHash, now],
      );
      return rows[0];
    },

    /** Erasure of closed accounts: their pending change and undo links (both hold addresses) go. */
    async forgetAccounts(accountIds: string[]): Promise<void> {
      if (!accountIds.length) return;
      await db.query('DELETE FROM email_changes WHERE account_id = ANY($1::text[])', [accountIds]);
      await db.query('DELETE FROM email_change_undos WHERE account_id = ANY($1::text[])', [accountIds]);
    },

    /**
     * The undo links of changes made at or after `since` go: the change an undo reverts is
     * older than them, so the earliest link wins (an intruder's second change leaves them a link
     * to their own first address, which must not outlive the owner's undo).
     */
    async dropUndosSince(tx: Queryable, accountId: string, since: Date): Promise<void> {
      await tx.query('DELETE FROM email_change_undos WHERE account_id = $1 AND changed_at >= $2', [accountId, since]);
    },

    /** Expired links of both kinds; lookups already ignore them. */
    async sweep(now: Date): Promise<number> {
      const changes = await db.query('DELETE FROM email_changes WHERE expires_at <= $1', [now]);
      const undos = await db.query('DELETE FROM email_change_undos WHERE expires_at <= $1', [now]);
      return (changes.rowCount ?? 0) + (undos.rowCount ?? 0);
    },

    async pending(accountId: string, now: Date): Promise<string | undefined> {
      const { rows } = await db.query<{ new_email: string }>('SELECT new_email FROM email_changes WHERE account_id = $1 AND expires_at > $2', [accountId, now]);
      return rows[0]?.new_email;
    },
  };
}

export type EmailChangeQueries = ReturnType<typeof createEmailChangeQueries>;
