import type { Queryable } from '../db.ts';

/**
 * Upstream identities linked to accounts (`account_identities`, migration 0013): a provider's
 * subject (Google today, company SSO later) and the account it logs in to. Not Trello's: a
 * Trello link only adds one when the member used Google.
 */
export function createAccountIdentityQueries(db: Queryable) {
  return {
    async findIdentity(provider: string, subject: string): Promise<{ account_id: string } | undefined> {
      const { rows } = await db.query<{ account_id: string }>('SELECT account_id FROM account_identities WHERE provider = $1 AND subject = $2', [provider, subject]);
      return rows[0];
    },

    /** A company sign-in's link, and whether its owner proved it (decision 0086). */
    async findLink(provider: string, subject: string): Promise<{ account_id: string; owner_proven: boolean } | undefined> {
      const { rows } = await db.query<{ account_id: string; owner_proven: boolean }>('SELECT account_id, owner_proven FROM account_identities WHERE provider = $1 AND subject = $2', [provider, subject]);
      return rows[0];
    },

    /** The link its owner proved: made, or marked proven when it was made on the upstream's word. */
    async addProvenLink(tx: Queryable, identity: { provider: string; subject: string; accountId: string; email: string; now: Date }): Promise<void> {
      await tx.query(
        `INSERT INTO account_identities (provider, subject, account_id, email, created_at, owner_proven) VALUES ($1, $2, $3, $4, $5, true)
         ON CONFLICT (provider, subject) DO UPDATE SET owner_proven = true WHERE account_identities.account_id = excluded.account_id`,
        [identity.provider, identity.subject, identity.accountId, identity.email, identity.now],
      );
    },

    async addIdentity(tx: Queryable, identity: { provider: string; subject: string; accountId: string; email: string | null; now: Date }): Promise<void> {
      await tx.query(
        'INSERT INTO account_identities (provider, subject, account_id, email, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING',
        [identity.provider, identity.subject, identity.accountId, identity.email, identity.now],
      );
    },

    /** Upstream logins linked at or after `since` (an undone email change, decision 0085): how many went. */
    async removeLinkedSince(tx: Queryable, accountId: string, since: Date): Promise<number> {
      const { rowCount } = await tx.query('DELETE FROM account_identities WHERE account_id = $1 AND created_at >= $2', [accountId, since]);
      return rowCount ?? 0;
    },

    /** Erasure of closed accounts: their upstream identities go. */
    async forgetAccounts(accountIds: string[]): Promise<void> {
      if (!accountIds.length) return;
      await db.query('DELETE FROM account_identities WHERE account_id = ANY($1::text[])', [accountIds]);
    },
  };
}

export type AccountIdentityQueries = ReturnType<typeof createAccountIdentityQueries>;
