import type { Queryable } from '../db.ts';

export interface SigningKeyRow {
  kid: string;
  alg: string;
  public_jwk: Record<string, unknown>;
  private_jwk_sealed: string;
  created_at: Date;
  activates_at: Date;
  unpublish_at: Date | null;
}

export function createSigningKeyQueries(db: Queryable) {
  return {
    /** Keys still published at `now`, newest first within each algorithm. */
    async listPublished(now: Date): Promise<SigningKeyRow[]> {
      const { rows } = await db.query<SigningKeyRow>(
        `SELECT kid, alg, public_jwk, private_jwk_sealed, created_at, activates_at, unpublish_at
         FROM signing_keys WHERE unpublish_at IS NULL OR unpublish_at > $1
         ORDER BY alg, activates_at DESC, created_at DESC`,
        [now],
      );
      return rows;
    },

    async insert(row: Omit<SigningKeyRow, 'created_at' | 'unpublish_at'>): Promise<void> {
      await db.query(
        `INSERT INTO signing_keys (kid, alg, public_jwk, private_jwk_sealed, activates_at) VALUES ($1, $2, $3::jsonb, $4, $5)`,
        [row.kid, row.alg, JSON.stringify(row.public_jwk), row.private_jwk_sealed, row.activates_at],
      );
    },

    /** Marks every other key of `alg` to be unpublished at `unpublishAt` (unless already earlier). */
    async scheduleUnpublish(alg: string, exceptKid: string, unpublishAt: Date): Promise<number> {
      const { rowCount } = await db.query(
        `UPDATE signing_keys SET unpublish_at = $3
         WHERE alg = $1 AND kid <> $2 AND (unpublish_at IS NULL OR unpublish_at > $3)`,
        [alg, exceptKid, unpublishAt],
      );
      return rowCount;
    },
  };
}

export type SigningKeyQueries = ReturnType<typeof createSigningKeyQueries>;
