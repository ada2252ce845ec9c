import type { Queryable } from '../db.ts';

export interface ResetTokenRow {
  token_hash: string;
  account_id: string;
  expires_at: Date;
  used_at: Date | null;
}

export function createPasswordResetQueries(db: Queryable) {
  return {
    /** A new link replaces every earlier one of the account. */
    async replace(tx: Queryable, row: { tokenHash: string; accountId: string; now: Date; expiresAt: Date }): Promise<void> {
      await tx.query('DELETE FROM password_reset_tokens WHERE account_id = $1', [row.accountId]);
      await tx.query(
        'INSERT INTO password_reset_tokens (token_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)',
        [row.tokenHash, row.accountId, row.now, row.expiresAt],
      );
    },

    async findUsable(tokenHash: string, now: Date): Promise<ResetTokenRow | undefined> {
      const { rows } = await db.query<ResetTokenRow>(
        'SELECT token_hash, account_id, expires_at, used_at FROM password_reset_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2',
        [tokenHash, now],
      );
      return rows[0];
    },

    /** Spends the token; false when it was already spent or expired (a double submit, a race). */
    async spend(tx: Queryable, tokenHash: string, now: Date): Promise<string | undefined> {
      const { rows } = await tx.query<{ account_id: string }>(
        'UPDATE password_reset_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING account_id',
        [tokenHash, now],
      );
      return rows[0]?.account_id;
    },

    async deleteForAccount(tx: Queryable, accountId: string): Promise<void> {
      await tx.query('DELETE FROM password_reset_tokens WHERE account_id = $1 AND used_at IS NULL', [accountId]);
    },
  };
}

export type PasswordResetQueries = ReturnType<typeof createPasswordResetQueries>;
