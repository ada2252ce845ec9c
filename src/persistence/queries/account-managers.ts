import type { Queryable } from '../db.ts';

export type ManagerKind = 'organization' | 'trello_enterprise';

export interface AccountManagerRow {
  account_id: string;
  kind: ManagerKind;
  organization_id: string | null;
  domain_id: string | null;
  enterprise_id: string | null;
  enterprise_name: string | null;
  trello_member_id: string | null;
  since: Date;
  /** The organization's name (kind organization) or the Enterprise's. */
  manager_name: string | null;
}

/** A managed account as an organization's admins see it (lists, the claim preview, the export). */
export interface ManagedAccountRow {
  id: string;
  email: string;
  name: string | null;
  status: 'active' | 'deactivated' | 'closed';
  delete_after: Date | null;
  created_at: Date;
  /** When the organization started managing it (absent in the claim preview). */
  since?: Date;
}

/** What an admin's list can be filtered by. `pending_deletion`: deactivated with a deletion date. */
export type ManagedStatusFilter = 'active' | 'deactivated' | 'pending_deletion';

/** `%`, `_` and `\` taken literally in a LIKE pattern. */
const likePrefix = (text: string) => `${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** The address's domain, as the index `accounts__email_domain` (migration 0018) has it. */
const EMAIL_DOMAIN = `lower(split_part(a.email, '@', -1))`;

const MANAGED = 'a.id, a.email, a.name, a.status, a.delete_after, a.created_at';

/**
 * Who manages an account besides its owner (`account_managers`, migration 0015): at most one
 * organization and one Trello Enterprise. Nothing here removes a manager because a domain's
 * re-check failed; only an explicit release does (decision 0028).
 */
export function createAccountManagerQueries(db: Queryable) {
  return {
    /**
     * Erasure of deleted or closed accounts: an erased account is nobody's to manage any more
     * (the organization's count and its domains stop counting it; the trigger clears the flag).
     */
    async forgetAccounts(accountIds: string[]): Promise<void> {
      if (!accountIds.length) return;
      await db.query('DELETE FROM account_managers WHERE account_id = ANY($1::text[])', [accountIds]);
    },

    async ofAccount(accountId: string, tx: Queryable = db): Promise<AccountManagerRow[]> {
      const { rows } = await tx.query<AccountManagerRow>(
        `SELECT m.account_id, m.kind, m.organization_id, m.domain_id, m.enterprise_id, m.enterprise_name, m.trello_member_id, m.since,
           COALESCE(o.name, m.enterprise_name, m.enterprise_id) AS manager_name
         FROM account_managers m LEFT JOIN organizations o ON o.id = m.organization_id WHERE m.account_id = $1 ORDER BY m.kind`,
        [accountId],
      );
      return rows;
    },

    /** Makes an organization the account's organization manager; false when another organization already manages it. */
    async claimForOrganization(tx: Queryable, row: { accountId: string; organizationId: string; domainId: string; now: Date }): Promise<boolean> {
      const { rowCount } = await tx.query(
        `INSERT INTO account_managers (account_id, kind, organization_id, domain_id, since) VALUES ($1, 'organization', $2, $3, $4)
         ON CONFLICT (account_id, kind) DO NOTHING`,
        [row.accountId, row.organizationId, row.domainId, row.now],
      );
      return rowCount === 1;
    },

    /** The import's side: the Enterprise of a linked Trello member manages its account (kept current on re-import). */
    async setTrelloEnterprise(tx: Queryable, row: { accountId: string; enterpriseId: string; enterpriseName: string | null; memberId: string; now: Date }): Promise<void> {
      await tx.query(
        `INSERT INTO account_managers (account_id, kind, enterprise_id, enterprise_name, trello_member_id, since) VALUES ($1, 'trello_enterprise', $2, $3, $4, $5)
         ON CONFLICT (account_id, kind) DO UPDATE SET enterprise_id = excluded.enterprise_id, enterprise_name = excluded.enterprise_name, trello_member_id = excluded.trello_member_id`,
        [row.accountId, row.enterpriseId, row.enterpriseName, row.memberId, row.now],
      );
    },

    /**
     * Accounts on a domain that no organization manages yet, for the claim preview: how many, and
     * a page of them by address. `domains` holds the domain's forms an address may use (ASCII and
     * Unicode). Erased accounts are not on any domain any more.
     */
    async claimable(domains: string[], page: { after?: string | undefined; limit: number }): Promise<{ count: number; accounts: ManagedAccountRow[] }> {
      const where = `${EMAIL_DOMAIN} = ANY($1::text[]) AND a.erased_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM account_managers m WHERE m.account_id = a.id AND m.kind = 'organization')`;
      const { rows: count } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM accounts a WHERE ${where}`, [domains]);
      const { rows } = await db.query<ManagedAccountRow>(
        `SELECT ${MANAGED} FROM accounts a WHERE ${where} AND ($2::text IS NULL OR lower(a.email) > $2) ORDER BY lower(a.email) LIMIT $3`,
        [domains, page.after?.toLowerCase() ?? null, page.limit],
      );
      return { count: count[0]!.n, accounts: rows };
    },

    /**
     * Claims every account on the domain that no organization manages yet, in one statement,
     * inside the caller's transaction; returns those it claimed (to be told by mail).
     */
    async claimDomain(tx: Queryable, row: { organizationId: string; domainId: string; domains: string[]; now: Date }): Promise<ManagedAccountRow[]> {
      const { rows } = await tx.query<ManagedAccountRow>(
        `WITH claimed AS (
           INSERT INTO account_managers (account_id, kind, organization_id, domain_id, since)
           SELECT a.id, 'organization', $1, $2, $4 FROM accounts a
           WHERE ${EMAIL_DOMAIN} = ANY($3::text[]) AND a.erased_at IS NULL
           ON CONFLICT (account_id, kind) DO NOTHING
           RETURNING account_id
         )
         SELECT ${MANAGED} FROM accounts a JOIN claimed c ON c.account_id = a.id ORDER BY lower(a.email)`,
        [row.organizationId, row.domainId, row.domains, row.now],
      );
      return rows;
    },

    /**
     * The organization's managed accounts, by address (keyset paging: `after` is the last
     * address of the previous page). `query` is a prefix of the address or of the name,
     * case-insensitive; erased accounts are left out.
     */
    async listForOrganization(organizationId: string, filter: { query?: string | undefined; status?: ManagedStatusFilter | undefined; after?: string | undefined; limit: number }): Promise<ManagedAccountRow[]> {
      const { rows } = await db.query<ManagedAccountRow>(
        `SELECT ${MANAGED}, m.since FROM account_managers m JOIN accounts a ON a.id = m.account_id
         WHERE m.organization_id = $1 AND m.kind = 'organization' AND a.erased_at IS NULL
           AND ($2::text IS NULL OR lower(a.email) LIKE $2 OR lower(a.name) LIKE $2)
           AND (CASE $3::text WHEN 'active' THEN a.status = 'active'
                              WHEN 'deactivated' THEN a.status = 'deactivated' AND a.delete_after IS NULL
                              WHEN 'pending_deletion' THEN a.status = 'deactivated' AND a.delete_after IS NOT NULL
                              ELSE true END)
           AND ($4::text IS NULL OR lower(a.email) > $4)
         ORDER BY lower(a.email) LIMIT $5`,
        [organizationId, filter.query ? likePrefix(filter.query.toLowerCase()) : null, filter.status ?? null, filter.after?.toLowerCase() ?? null, filter.limit],
      );
      return rows;
    },

    /** The account if this organization manages it (and it is not erased); locked with `tx` when asked. */
    async managedBy(organizationId: string, accountId: string, tx: Queryable = db, lock = false): Promise<ManagedAccountRow | undefined> {
      const { rows } = await tx.query<ManagedAccountRow>(
        `SELECT ${MANAGED}, m.since FROM account_managers m JOIN accounts a ON a.id = m.account_id
         WHERE m.organization_id = $1 AND m.kind = 'organization' AND m.account_id = $2 AND a.erased_at IS NULL${lock ? ' FOR UPDATE OF a' : ''}`,
        [organizationId, accountId],
      );
      return rows[0];
    },

    /** Those of `accountIds` this organization manages (not erased), by address: the console's detail page and bulk confirmation. */
    async managedAmong(organizationId: string, accountIds: string[]): Promise<ManagedAccountRow[]> {
      const { rows } = await db.query<ManagedAccountRow>(
        `SELECT ${MANAGED}, m.since FROM account_managers m JOIN accounts a ON a.id = m.account_id
         WHERE m.organization_id = $1 AND m.kind = 'organization' AND m.account_id = ANY($2::text[]) AND a.erased_at IS NULL
         ORDER BY lower(a.email)`,
        [organizationId, accountIds],
      );
      return rows;
    },

    /** The import's side: the Enterprise was dropped from a linked member on re-import. */
    async dropTrelloEnterprise(tx: Queryable, accountId: string): Promise<void> {
      await tx.query(`DELETE FROM account_managers WHERE account_id = $1 AND kind = 'trello_enterprise'`, [accountId]);
    },

    /**
     * What releasing would act on: the organization's managed accounts (those of one domain
     * when `domainId` is given), not erased, counted by state. `deactivated` leaves out those
     * with a deletion date (they are erased as scheduled either way).
     */
    async releaseCounts(scope: { organizationId: string; domainId?: string | undefined }, tx: Queryable = db): Promise<{ managed: number; deactivated: number }> {
      const { rows } = await tx.query<{ managed: number; deactivated: number }>(
        `SELECT count(*)::int AS managed, count(*) FILTER (WHERE a.status = 'deactivated' AND a.delete_after IS NULL)::int AS deactivated
         FROM account_managers m JOIN accounts a ON a.id = m.account_id
         WHERE m.kind = 'organization' AND m.organization_id = $1 AND ($2::text IS NULL OR m.domain_id = $2) AND a.erased_at IS NULL`,
        [scope.organizationId, scope.domainId ?? null],
      );
      return rows[0]!;
    },

    /**
     * Releases the organization's managed accounts (of one domain when `domainId` is given), in
     * one statement inside the caller's transaction: their rows go (and, by the trigger of
     * migration 0024, their policy assignments); returns the accounts released, by address.
     */
    /**
     * The organization lets the account go, if it still manages it: it claimed the account by the
     * address an undone email change gave it (decision 0085). Whether it did.
     */
    async releaseFromOrganization(tx: Queryable, accountId: string, organizationId: string): Promise<boolean> {
      const { rowCount } = await tx.query("DELETE FROM account_managers WHERE account_id = $1 AND kind = 'organization' AND organization_id = $2", [accountId, organizationId]);
      return rowCount > 0;
    },

    async release(tx: Queryable, scope: { organizationId: string; domainId?: string | undefined }): Promise<ManagedAccountRow[]> {
      const { rows } = await tx.query<ManagedAccountRow>(
        `WITH released AS (
           DELETE FROM account_managers m
           WHERE m.kind = 'organization' AND m.organization_id = $1 AND ($2::text IS NULL OR m.domain_id = $2)
           RETURNING m.account_id
         )
         SELECT ${MANAGED} FROM accounts a JOIN released r ON r.account_id = a.id WHERE a.erased_at IS NULL ORDER BY lower(a.email)`,
        [scope.organizationId, scope.domainId ?? null],
      );
      return rows;
    },

    /** The dashboard's count: the accounts the list shows (not erased), as the release counts them. */
    async countForOrganization(organizationId: string): Promise<number> {
      const { rows } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM account_managers m JOIN accounts a ON a.id = m.account_id
         WHERE m.organization_id = $1 AND m.kind = 'organization' AND a.erased_at IS NULL`,
        [organizationId],
      );
      return rows[0]!.n;
    },
  };
}

export type AccountManagerQueries = ReturnType<typeof createAccountManagerQueries>;
