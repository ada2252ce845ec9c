import type { Queryable } from '../db.ts';

/** SAML assertion ids already used, per connector (migration 0021). */
export function createSamlAssertionSeenQueries(db: Queryable) {
  return {
    /**
     * Records the id in one statement, atomic across instances: true when it is new (or only an
     * expired row, not yet swept, had it), false when a live row has it already — a replay.
     */
    async remember(idHash: string, connectorId: string, expiresAt: Date, now: Date): Promise<boolean> {
      const { rows } = await db.query<{ id_hash: string }>(
        `INSERT INTO saml_assertions_seen (id_hash, connector_id, expires_at, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id_hash) DO UPDATE SET expires_at = excluded.expires_at, created_at = excluded.created_at
           WHERE saml_assertions_seen.expires_at <= excluded.created_at
         RETURNING id_hash`,
        [idHash, connectorId, expiresAt, now],
      );
      return rows.length === 1;
    },

    /** Deletes up to `limit` expired rows; small batches keep locks short while requests run. */
    async sweepExpired(now: Date, limit: number): Promise<number> {
      const { rowCount } = await db.query(
        'DELETE FROM saml_assertions_seen WHERE id_hash IN (SELECT id_hash FROM saml_assertions_seen WHERE expires_at <= $1 LIMIT $2)',
        [now, limit],
      );
      return rowCount;
    },
  };
}

export type SamlAssertionSeenQueries = ReturnType<typeof createSamlAssertionSeenQueries>;
