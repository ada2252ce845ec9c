import type { Queryable } from '../db.ts';

export interface TotpFactorRow {
  account_id: string;
  secret_sealed: string;
  confirmed_at: Date | null;
  last_time_step: string; // bigint arrives as a string
  created_at: Date;
}

/** TOTP factors and recovery codes (migration 0010). */
export function createTwoStepQueries(db: Queryable) {
  return {
    async findFactor(accountId: string, tx: Queryable = db): Promise<TotpFactorRow | undefined> {
      const { rows } = await tx.query<TotpFactorRow>('SELECT account_id, secret_sealed, confirmed_at, last_time_step, created_at FROM totp_factors WHERE account_id = $1', [accountId]);
      return rows[0];
    },

    /** Stores a confirmed factor; false when the account already has one. */
    async insertConfirmed(tx: Queryable, accountId: string, secretSealed: string, timeStep: number, now: Date): Promise<boolean> {
      const { rowCount } = await tx.query(
        `INSERT INTO totp_factors (account_id, secret_sealed, confirmed_at, last_time_step, created_at) VALUES ($1, $2, $4, $3, $4)
         ON CONFLICT (account_id) DO NOTHING`,
        [accountId, secretSealed, timeStep, now],
      );
      return rowCount === 1;
    },

    /**
     * Records `timeStep` as used, only if it is newer than the last one: two requests racing with
     * the same code cannot both succeed (RFC 6238 §5.2, "one-time").
     */
    async useTimeStep(accountId: string, timeStep: number): Promise<boolean> {
      const { rowCount } = await db.query(
        'UPDATE totp_factors SET last_time_step = $2 WHERE account_id = $1 AND confirmed_at IS NOT NULL AND last_time_step < $2',
        [accountId, timeStep],
      );
      return rowCount === 1;
    },

    /**
     * The authenticator switched on at or after `since`, and with it the recovery codes: true when
     * there was one (an undone email change, decision 0085). One switched on before stays.
     */
    async removeFactorConfirmedSince(tx: Queryable, accountId: string, since: Date): Promise<boolean> {
      const { rowCount } = await tx.query('DELETE FROM totp_factors WHERE account_id = $1 AND confirmed_at >= $2', [accountId, since]);
      if (!rowCount) return false;
      await tx.query('DELETE FROM recovery_codes WHERE account_id = $1', [accountId]);
      return true;
    },

    async removeFactor(tx: Queryable, accountId: string): Promise<void> {
      await tx.query('DELETE FROM totp_factors WHERE account_id = $1', [accountId]);
      await tx.query('DELETE FROM recovery_codes WHERE account_id = $1', [accountId]);
    },

    async replaceRecoveryCodes(tx: Queryable, accountId: string, hashes: string[], now: Date): Promise<void> {
      await tx.query('DELETE FROM recovery_codes WHERE account_id = $1', [accountId]);
      await tx.query(
        'INSERT INTO recovery_codes (account_id, code_hash, created_at) SELECT $1, h, $3 FROM unnest($2::text[]) AS h',
        [accountId, hashes, now],
      );
    },

    /** Spends one unused code; true only for the one request that spent it. */
    async spendRecoveryCode(tx: Queryable, accountId: string, hash: string, now: Date): Promise<boolean> {
      const { rowCount } = await tx.query(
        'UPDATE recovery_codes SET used_at = $3 WHERE account_id = $1 AND code_hash = $2 AND used_at IS NULL',
        [accountId, hash, now],
      );
      return rowCount === 1;
    },

    async unusedRecoveryCodes(accountId: string, tx: Queryable = db): Promise<number> {
      const { rows } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL', [accountId]);
      return rows[0]?.n ?? 0;
    },

    async forgetAccounts(accountIds: string[]): Promise<void> {
      if (!accountIds.length) return;
      await db.query('DELETE FROM totp_factors WHERE account_id = ANY($1::text[])', [accountIds]);
      await db.query('DELETE FROM recovery_codes WHERE account_id = ANY($1::text[])', [accountIds]);
    },

    async setRequired(accountId: string, required: boolean): Promise<boolean> {
      const { rowCount } = await db.query('UPDATE accounts SET two_step_required = $2 WHERE id = $1', [accountId, required]);
      return rowCount === 1;
    },
  };
}

export type TwoStepQueries = ReturnType<typeof createTwoStepQueries>;
