import type { Queryable } from '../db.ts';

export interface SignupFlowRow {
  id: string;
  interaction_uid: string;
  email: string;
  code_hash: string;
  attempts: number;
  verified_at: Date | null;
  completed_at: Date | null;
  expires_at: Date;
}

const COLUMNS = 'id, interaction_uid, email, code_hash, attempts, verified_at, completed_at, expires_at';

export function createSignupFlowQueries(db: Queryable) {
  return {
    /** A new flow replaces earlier ones of the same interaction (the user changed the address). */
    async replace(tx: Queryable, row: { id: string; interactionUid: string; email: string; codeHash: string; linkHash: string; now: Date; expiresAt: Date }): Promise<void> {
      await tx.query('DELETE FROM signup_flows WHERE interaction_uid = $1 AND completed_at IS NULL', [row.interactionUid]);
      await tx.query(
        `INSERT INTO signup_flows (id, interaction_uid, email, code_hash, link_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [row.id, row.interactionUid, row.email, row.codeHash, row.linkHash, row.expiresAt, row.now],
      );
    },

    async findOpen(interactionUid: string, now: Date): Promise<SignupFlowRow | undefined> {
      const { rows } = await db.query<SignupFlowRow>(
        `SELECT ${COLUMNS} FROM signup_flows WHERE interaction_uid = $1 AND completed_at IS NULL AND expires_at > $2 ORDER BY created_at DESC LIMIT 1`,
        [interactionUid, now],
      );
      return rows[0];
    },

    /** Counts a code attempt and returns the flow as it now stands (attempts included). */
    async countAttempt(id: string): Promise<SignupFlowRow | undefined> {
      const { rows } = await db.query<SignupFlowRow>(`UPDATE signup_flows SET attempts = attempts + 1 WHERE id = $1 RETURNING ${COLUMNS}`, [id]);
      return rows[0];
    },

    async markVerified(id: string, now: Date): Promise<void> {
      await db.query('UPDATE signup_flows SET verified_at = $2 WHERE id = $1 AND verified_at IS NULL', [id, now]);
    },

    /** Verifies by link: single use, unexpired; returns the flow it verified. */
    /** The open, unverified flow a link belongs to, without verifying it. */
    async findByLink(linkHash: string, now: Date): Promise<SignupFlowRow | undefined> {
      const { rows } = await db.query<SignupFlowRow>(
        `SELECT ${COLUMNS} FROM signup_flows WHERE link_hash = $1 AND verified_at IS NULL AND completed_at IS NULL AND expires_at > $2`,
        [linkHash, now],
      );
      return rows[0];
    },

    /** The interaction's flow that this link already verified, still open (the link opened again). */
    async verifiedByLink(linkHash: string, interactionUid: string, now: Date): Promise<SignupFlowRow | undefined> {
      const { rows } = await db.query<SignupFlowRow>(
        `SELECT ${COLUMNS} FROM signup_flows WHERE link_hash = $1 AND interaction_uid = $2 AND verified_at IS NOT NULL AND completed_at IS NULL AND expires_at > $3`,
        [linkHash, interactionUid, now],
      );
      return rows[0];
    },

    async verifyByLink(linkHash: string, now: Date): Promise<SignupFlowRow | undefined> {
      const { rows } = await db.query<SignupFlowRow>(
        `UPDATE signup_flows SET verified_at = $2 WHERE link_hash = $1 AND verified_at IS NULL AND completed_at IS NULL AND expires_at > $2 RETURNING ${COLUMNS}`,
        [linkHash, now],
      );
      return rows[0];
    },

    /** Closes the flow; false when it was already completed (double submit). */
    async complete(tx: Queryable, id: string, now: Date): Promise<boolean> {
      const { rowCount } = await tx.query('UPDATE signup_flows SET completed_at = $2 WHERE id = $1 AND completed_at IS NULL AND verified_at IS NOT NULL', [id, now]);
      return rowCount === 1;
    },
  };
}

export type SignupFlowQueries = ReturnType<typeof createSignupFlowQueries>;
