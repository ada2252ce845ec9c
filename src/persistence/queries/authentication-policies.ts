import type { Queryable } from '../db.ts';

/**
 * An organization's authentication policies (`authentication_policies`, migration 0020) and who
 * follows which (`authentication_policy_members`). The decision point does not read these: the
 * rules ride on the account lookup (`policyRulesOf` in accounts.ts). These are the console's.
 */
export interface AuthenticationPolicyRow {
  id: string;
  organization_id: string;
  name: string;
  is_default: boolean;
  login_method: 'password' | 'sso';
  connector_id: string | null;
  two_step_required: boolean;
  password_min_length: number | null;
  password_max_age_days: number | null;
  idle_timeout_seconds: number | null;
  max_session_seconds: number | null;
  reauthenticate_after: Date | null;
  created_at: Date;
  updated_at: Date;
  /** Only from `list`: accounts assigned to it (not those following it as the default). */
  assigned?: number;
}

export interface PolicySettings {
  name: string;
  loginMethod: 'password' | 'sso';
  connectorId: string | null;
  twoStepRequired: boolean;
  passwordMinLength: number | null;
  passwordMaxAgeDays: number | null;
  idleTimeoutSeconds: number | null;
  maxSessionSeconds: number | null;
}

/** A connector as the policy form offers it (the connectors themselves are src/federation/connectors.ts's). */
export interface ConnectorChoice {
  id: string;
  name: string;
  kind: string;
  enabled: boolean;
}

const COLUMNS = `p.id, p.organization_id, p.name, p.is_default, p.login_method, p.connector_id, p.two_step_required,
  p.password_min_length, p.password_max_age_days, p.idle_timeout_seconds, p.max_session_seconds, p.reauthenticate_after,
  p.created_at, p.updated_at`;

export function createAuthenticationPolicyQueries(db: Queryable) {
  return {
    /** The organization's policies, the default first, then by name, with how many accounts each has assigned. */
    async list(organizationId: string, tx: Queryable = db): Promise<AuthenticationPolicyRow[]> {
      const { rows } = await tx.query<AuthenticationPolicyRow>(
        `SELECT ${COLUMNS}, (SELECT count(*)::int FROM authentication_policy_members pm WHERE pm.policy_id = p.id) AS assigned
         FROM authentication_policies p WHERE p.organization_id = $1 ORDER BY p.is_default DESC, lower(p.name)`,
        [organizationId],
      );
      return rows;
    },

    /** One policy of the organization (`lock`: FOR UPDATE, inside `tx`). */
    async find(organizationId: string, policyId: string, tx: Queryable = db, lock = false): Promise<AuthenticationPolicyRow | undefined> {
      const { rows } = await tx.query<AuthenticationPolicyRow>(
        `SELECT ${COLUMNS} FROM authentication_policies p WHERE p.organization_id = $1 AND p.id = $2${lock ? ' FOR UPDATE' : ''}`,
        [organizationId, policyId],
      );
      return rows[0];
    },

    async count(tx: Queryable, organizationId: string): Promise<number> {
      const { rows } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM authentication_policies WHERE organization_id = $1', [organizationId]);
      return rows[0]!.n;
    },

    async insert(tx: Queryable, row: { id: string; organizationId: string; isDefault: boolean; now: Date } & PolicySettings): Promise<AuthenticationPolicyRow> {
      const { rows } = await tx.query<AuthenticationPolicyRow>(
        `INSERT INTO authentication_policies AS p (id, organization_id, name, is_default, login_method, connector_id, two_step_required,
           password_min_length, password_max_age_days, idle_timeout_seconds, max_session_seconds, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING ${COLUMNS}`,
        [row.id, row.organizationId, row.name, row.isDefault, row.loginMethod, row.connectorId, row.twoStepRequired,
          row.passwordMinLength, row.passwordMaxAgeDays, row.idleTimeoutSeconds, row.maxSessionSeconds, row.now],
      );
      return rows[0]!;
    },

    async update(tx: Queryable, policyId: string, settings: PolicySettings, now: Date): Promise<AuthenticationPolicyRow> {
      const { rows } = await tx.query<AuthenticationPolicyRow>(
        `UPDATE authentication_policies AS p SET name = $2, login_method = $3, connector_id = $4, two_step_required = $5,
           password_min_length = $6, password_max_age_days = $7, idle_timeout_seconds = $8, max_session_seconds = $9, updated_at = $10
         WHERE p.id = $1 RETURNING ${COLUMNS}`,
        [policyId, settings.name, settings.loginMethod, settings.connectorId, settings.twoStepRequired, settings.passwordMinLength,
          settings.passwordMaxAgeDays, settings.idleTimeoutSeconds, settings.maxSessionSeconds, now],
      );
      return rows[0]!;
    },

    /** Makes `policyId` the organization's default (the partial unique index allows one). */
    async makeDefault(tx: Queryable, organizationId: string, policyId: string, now: Date): Promise<void> {
      await tx.query('UPDATE authentication_policies SET is_default = false, updated_at = $3 WHERE organization_id = $1 AND is_default AND id <> $2', [organizationId, policyId, now]);
      await tx.query('UPDATE authentication_policies SET is_default = true, updated_at = $3 WHERE organization_id = $1 AND id = $2', [organizationId, policyId, now]);
    },

    /** Deletes the policy; its assignments go with it (ON DELETE CASCADE): those accounts follow the default. */
    async remove(tx: Queryable, policyId: string): Promise<void> {
      await tx.query('DELETE FROM authentication_policies WHERE id = $1', [policyId]);
    },

    /** "Sign everyone out": logins before `at` no longer count for accounts under the policy. */
    async reauthenticateAfter(tx: Queryable, policyId: string, at: Date): Promise<void> {
      await tx.query('UPDATE authentication_policies SET reauthenticate_after = $2, updated_at = $2 WHERE id = $1', [policyId, at]);
    },

    /** Assigns the account to the policy (one row per account: a new assignment replaces the old). */
    async assign(tx: Queryable, accountId: string, policyId: string, now: Date): Promise<void> {
      await tx.query(
        `INSERT INTO authentication_policy_members (account_id, policy_id, added_at) VALUES ($1, $2, $3)
         ON CONFLICT (account_id) DO UPDATE SET policy_id = excluded.policy_id, added_at = excluded.added_at`,
        [accountId, policyId, now],
      );
    },

    /** The account follows its organization's default again. */
    async unassign(tx: Queryable, accountId: string): Promise<void> {
      await tx.query('DELETE FROM authentication_policy_members WHERE account_id = $1', [accountId]);
    },

    /** The policy an account is assigned to in this organization, if any (else it follows the default). */
    async assignedPolicy(organizationId: string, accountId: string, tx: Queryable = db): Promise<string | undefined> {
      const { rows } = await tx.query<{ policy_id: string }>(
        `SELECT pm.policy_id FROM authentication_policy_members pm JOIN authentication_policies p ON p.id = pm.policy_id
         WHERE pm.account_id = $1 AND p.organization_id = $2`,
        [accountId, organizationId],
      );
      return rows[0]?.policy_id;
    },

    /**
     * The accounts that follow the policy now, the ones it manages only: those assigned to it,
     * and — for the default — every account the organization manages that is assigned to none of
     * its other policies. Not erased.
     */
    async accountsUnder(organizationId: string, policy: { id: string; is_default: boolean }, tx: Queryable = db): Promise<string[]> {
      const { rows } = await tx.query<{ id: string }>(
        `SELECT m.account_id AS id FROM account_managers m JOIN accounts a ON a.id = m.account_id
         LEFT JOIN authentication_policy_members pm ON pm.account_id = m.account_id
           AND pm.policy_id IN (SELECT id FROM authentication_policies WHERE organization_id = $1)
         WHERE m.organization_id = $1 AND m.kind = 'organization' AND a.erased_at IS NULL
           AND (pm.policy_id = $2 OR ($3 AND pm.policy_id IS NULL))`,
        [organizationId, policy.id, policy.is_default],
      );
      return rows.map((r) => r.id);
    },

    /** The organization's connectors, for the policy form's choice (the sso branch's service owns them). */
    async connectors(organizationId: string): Promise<ConnectorChoice[]> {
      const { rows } = await db.query<ConnectorChoice>('SELECT id, name, kind, enabled FROM connectors WHERE organization_id = $1 ORDER BY lower(name)', [organizationId]);
      return rows;
    },

    /** Erasure: an erased account follows no policy (the managers trigger does it too, migration 0024). */
    async forgetAccounts(accountIds: string[]): Promise<void> {
      if (accountIds.length) await db.query('DELETE FROM authentication_policy_members WHERE account_id = ANY($1::text[])', [accountIds]);
    },
  };
}

export type AuthenticationPolicyQueries = ReturnType<typeof createAuthenticationPolicyQueries>;
