import type { Queryable } from '../db.ts';

export type OrganizationRole = 'admin' | 'member';

export interface OrganizationRow {
  id: string;
  name: string;
  created_at: Date;
  created_by: string;
}

export interface MembershipRow extends OrganizationRow {
  role: OrganizationRole;
}

export interface MemberRow {
  account_id: string;
  email: string;
  name: string | null;
  role: OrganizationRole;
  added_at: Date;
  added_by: string | null;
}

export interface InvitationRow {
  id: string;
  organization_id: string;
  email: string;
  role: OrganizationRole;
  invited_by: string;
  created_at: Date;
  expires_at: Date;
  accepted_at: Date | null;
  accepted_by: string | null;
}

const INVITATION = 'id, organization_id, email, role, invited_by, created_at, expires_at, accepted_at, accepted_by';

/** Organizations, their members and admin invitations (`organizations`, `organization_members`, `organization_invitations`, migration 0015). */
export function createOrganizationQueries(db: Queryable) {
  return {
    async insert(tx: Queryable, row: { id: string; name: string; createdBy: string; now: Date }): Promise<OrganizationRow> {
      const { rows } = await tx.query<OrganizationRow>(
        'INSERT INTO organizations (id, name, created_at, created_by) VALUES ($1, $2, $3, $4) RETURNING id, name, created_at, created_by',
        [row.id, row.name, row.now, row.createdBy],
      );
      return rows[0]!;
    },

    async find(id: string, tx: Queryable = db): Promise<OrganizationRow | undefined> {
      const { rows } = await tx.query<OrganizationRow>('SELECT id, name, created_at, created_by FROM organizations WHERE id = $1', [id]);
      return rows[0];
    },

    async rename(tx: Queryable, id: string, name: string): Promise<boolean> {
      const { rowCount } = await tx.query('UPDATE organizations SET name = $2 WHERE id = $1 AND deleted_at IS NULL', [id, name]);
      return rowCount === 1;
    },

    /**
     * Deletes what is only the organization's own: its authentication policies (their
     * assignments cascade), identity providers (their domain links cascade, and the accounts'
     * links to them), domains, admins and
     * invitations; the organization's row stays, marked deleted, with its audit trail (migration
     * 0029). One statement per table, in the order the foreign keys need; the caller's
     * transaction makes them one change. The caller has locked the row and released the accounts
     * it managed (decision 0078): `account_managers` has no ON DELETE action, so an account still
     * managed fails the transaction rather than being released silently.
     */
    async markDeleted(tx: Queryable, id: string, now: Date): Promise<boolean> {
      await tx.query('DELETE FROM authentication_policies WHERE organization_id = $1', [id]);
      // The links of people's accounts to its identity providers go with those providers: a
      // connector's id is never reused, so they could never match again (and say nothing now).
      await tx.query('DELETE FROM account_identities WHERE provider IN (SELECT id FROM connectors WHERE organization_id = $1)', [id]);
      await tx.query('DELETE FROM connectors WHERE organization_id = $1', [id]);
      await tx.query('DELETE FROM organization_domains WHERE organization_id = $1', [id]);
      await tx.query('DELETE FROM organization_members WHERE organization_id = $1', [id]);
      await tx.query('DELETE FROM organization_invitations WHERE organization_id = $1', [id]);
      const { rowCount } = await tx.query('UPDATE organizations SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL', [id, now]);
      return rowCount === 1;
    },

    async addMember(tx: Queryable, row: { organizationId: string; accountId: string; role: OrganizationRole; addedBy: string | null; now: Date }): Promise<void> {
      await tx.query(
        `INSERT INTO organization_members (organization_id, account_id, role, added_at, added_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (organization_id, account_id) DO UPDATE SET role = CASE WHEN excluded.role = 'admin' THEN 'admin' ELSE organization_members.role END`,
        [row.organizationId, row.accountId, row.role, row.now, row.addedBy],
      );
    },

    /** The organization with the account's role in it; undefined when it is not a member (or there is no such organization). */
    async membership(accountId: string, organizationId: string, tx: Queryable = db): Promise<MembershipRow | undefined> {
      const { rows } = await tx.query<MembershipRow>(
        `SELECT o.id, o.name, o.created_at, o.created_by, m.role FROM organization_members m JOIN organizations o ON o.id = m.organization_id
         WHERE m.account_id = $1 AND m.organization_id = $2`,
        [accountId, organizationId],
      );
      return rows[0];
    },

    /** Every organization the account belongs to, by name. */
    async listForAccount(accountId: string): Promise<MembershipRow[]> {
      const { rows } = await db.query<MembershipRow>(
        `SELECT o.id, o.name, o.created_at, o.created_by, m.role FROM organization_members m JOIN organizations o ON o.id = m.organization_id
         WHERE m.account_id = $1 ORDER BY lower(o.name), o.id`,
        [accountId],
      );
      return rows;
    },

    async members(organizationId: string, role?: OrganizationRole, tx: Queryable = db): Promise<MemberRow[]> {
      const { rows } = await tx.query<MemberRow>(
        `SELECT m.account_id, a.email, a.name, m.role, m.added_at, m.added_by FROM organization_members m JOIN accounts a ON a.id = m.account_id
         WHERE m.organization_id = $1 AND ($2::text IS NULL OR m.role = $2) ORDER BY m.added_at, m.account_id`,
        [organizationId, role ?? null],
      );
      return rows;
    },

    /** A new invitation replaces the open one of the same address. */
    async replaceInvitation(tx: Queryable, row: { id: string; organizationId: string; email: string; role: OrganizationRole; tokenHash: string; invitedBy: string; now: Date; expiresAt: Date }): Promise<void> {
      await tx.query('DELETE FROM organization_invitations WHERE organization_id = $1 AND lower(email) = lower($2) AND accepted_at IS NULL', [row.organizationId, row.email]);
      await tx.query(
        `INSERT INTO organization_invitations (id, organization_id, email, role, token_hash, invited_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [row.id, row.organizationId, row.email, row.role, row.tokenHash, row.invitedBy, row.now, row.expiresAt],
      );
    },

    async findOpenInvitation(tokenHash: string, now: Date): Promise<InvitationRow | undefined> {
      const { rows } = await db.query<InvitationRow>(
        `SELECT ${INVITATION} FROM organization_invitations WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2`,
        [tokenHash, now],
      );
      return rows[0];
    },

    /** Spends the invitation; undefined when it was already accepted or has expired (a double submit, a race). */
    async acceptInvitation(tx: Queryable, tokenHash: string, accountId: string, now: Date): Promise<InvitationRow | undefined> {
      const { rows } = await tx.query<InvitationRow>(
        `UPDATE organization_invitations SET accepted_at = $3, accepted_by = $2
         WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $3 RETURNING ${INVITATION}`,
        [tokenHash, accountId, now],
      );
      return rows[0];
    },

    /** An invitation by its token's hash, whatever its state (the page says why it cannot be used). */
    async findInvitation(tokenHash: string): Promise<InvitationRow | undefined> {
      const { rows } = await db.query<InvitationRow>(`SELECT ${INVITATION} FROM organization_invitations WHERE token_hash = $1`, [tokenHash]);
      return rows[0];
    },

    /** Withdraws an open invitation (its link stops working); undefined when there was none open. */
    async revokeInvitation(tx: Queryable, organizationId: string, invitationId: string): Promise<InvitationRow | undefined> {
      const { rows } = await tx.query<InvitationRow>(
        `DELETE FROM organization_invitations WHERE organization_id = $1 AND id = $2 AND accepted_at IS NULL RETURNING ${INVITATION}`,
        [organizationId, invitationId],
      );
      return rows[0];
    },

    /**
     * Locks the organization's row until the transaction ends: changes to its admins are made one
     * at a time, so two admins removing each other at once cannot leave it with none.
     */
    async lock(tx: Queryable, organizationId: string): Promise<boolean> {
      const { rows } = await tx.query('SELECT id FROM organizations WHERE id = $1 AND deleted_at IS NULL FOR UPDATE', [organizationId]);
      return rows.length === 1;
    },

    async removeMember(tx: Queryable, organizationId: string, accountId: string): Promise<boolean> {
      const { rowCount } = await tx.query('DELETE FROM organization_members WHERE organization_id = $1 AND account_id = $2', [organizationId, accountId]);
      return rowCount === 1;
    },

    /**
     * The admins who could still act for the organization besides `exceptAccountId`: those whose
     * account is active (a deactivated or deleted admin acts for nobody).
     */
    async countActiveAdminsExcept(tx: Queryable, organizationId: string, exceptAccountId: string): Promise<number> {
      const { rows } = await tx.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM organization_members m JOIN accounts a ON a.id = m.account_id
          WHERE m.organization_id = $1 AND m.role = 'admin' AND a.status = 'active' AND m.account_id <> $2`,
        [organizationId, exceptAccountId],
      );
      return rows[0]!.n;
    },

    /** Whether the account is an admin of any organization (by the index on account_id). */
    async isAdminOfAny(accountId: string): Promise<boolean> {
      const { rows } = await db.query(`SELECT 1 FROM organization_members WHERE account_id = $1 AND role = 'admin' LIMIT 1`, [accountId]);
      return rows.length === 1;
    },

    /** Whether the account is an admin of the organization (read inside the caller's transaction). */
    async isAdmin(tx: Queryable, organizationId: string, accountId: string): Promise<boolean> {
      const { rows } = await tx.query(`SELECT 1 FROM organization_members WHERE organization_id = $1 AND account_id = $2 AND role = 'admin'`, [organizationId, accountId]);
      return rows.length === 1;
    },

    /**
     * How many organizations an account is an admin of, counted after locking its account row
     * (FOR NO KEY UPDATE: foreign keys to it are not held up) until the transaction ends, so two
     * creations at once cannot both slip under the bound (ORGANIZATIONS_PER_ACCOUNT).
     */
    async lockAndCountAdminOf(tx: Queryable, accountId: string): Promise<number> {
      await tx.query('SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE', [accountId]);
      const { rows } = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM organization_members WHERE account_id = $1 AND role = 'admin'`, [accountId]);
      return rows[0]!.n;
    },

    async openInvitations(organizationId: string, now: Date): Promise<InvitationRow[]> {
      const { rows } = await db.query<InvitationRow>(
        `SELECT ${INVITATION} FROM organization_invitations WHERE organization_id = $1 AND accepted_at IS NULL AND expires_at > $2 ORDER BY created_at`,
        [organizationId, now],
      );
      return rows;
    },
  };
}

export type OrganizationQueries = ReturnType<typeof createOrganizationQueries>;
