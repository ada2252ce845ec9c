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

/**
 * Who manages an account besides its owner (`account_managers`, migration 0015): at most one
 * organization and one Trello Enterprise. Nothing here removes a manager because a domain's
 * re-check failed; only an explicit release does (decision 0028).
 */
export function createAccountManagerQueries(db: Queryable) {
  return {
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

    async countForOrganization(organizationId: string): Promise<number> {
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM account_managers WHERE organization_id = $1', [organizationId]);
      return rows[0]!.n;
    },

    async countForDomain(domainId: string): Promise<number> {
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM account_managers WHERE domain_id = $1', [domainId]);
      return rows[0]!.n;
    },
  };
}

export type AccountManagerQueries = ReturnType<typeof createAccountManagerQueries>;
