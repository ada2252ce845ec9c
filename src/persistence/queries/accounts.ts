import { domainToASCII } from 'node:url';
import type { Queryable } from '../db.ts';

export type AccountStatus = 'active' | 'deactivated' | 'closed';

export interface AccountRow {
  id: string;
  email: string;
  email_verified: boolean;
  name: string | null;
  nickname: string | null;
  picture: string | null;
  locale: string | null;
  zoneinfo: string | null;
  status: AccountStatus;
  password_hash: string | null;
  password_changed_at: Date | null;
  job_title: string | null;
  department: string | null;
  organization_name: string | null;
  location: string | null;
  /** field → 'anyone' | 'organization' | 'private' (src/identity/profile.ts). */
  profile_visibility: Record<string, string>;
  closed_at: Date | null;
  delete_after: Date | null;
  erased_at: Date | null;
  /** An operator (later: an organization policy) requires two-step verification. */
  two_step_required: boolean;
  /** Only from `findByEmail` and `findWithPolicy` (src/policy/): a confirmed TOTP factor exists. */
  two_step_enabled?: boolean;
  /** Only from `findByEmail` and `findWithPolicy`: a Trello member is linked to the account. */
  trello_linked?: boolean;
  /**
   * Only from `findByEmail`, `findWithPolicy` and `findForTokens`: who manages the account
   * besides its owner, as [kind, id, name, rules] (`account_managers`: an organization by verified
   * domain, a Trello Enterprise from the import), ordered by kind.
   */
  managers?: ['organization' | 'trello_enterprise', string, string, string | null][];
  /**
   * Only from `findForLogin`: an unlinked Trello member has this address verified while the
   * account has no member yet — the link offer after a password login (TrelloMemberQueries'
   * `linkableByAccount`, read in the same statement as the login lookup).
   */
  trello_linkable?: boolean;
  created_at: Date;
  updated_at: Date;
}

export interface NewAccount {
  id: string;
  email: string;
  emailVerified: boolean;
  name?: string | null;
  nickname?: string | null;
  locale?: string | null;
  zoneinfo?: string | null;
  passwordHash?: string | null;
}

/**
 * The rules of the authentication policy an account follows in organization `am.organization_id`
 * (issue 13, decision 0033): the one it is assigned to, else the organization's default — as JSON
 * text, NULL when the organization has no policy. Parsed by src/policy/policy.ts (`rulesFrom`).
 * `$account` is the SQL naming the account's id.
 */
export const policyRulesOf = (account: string, organization: string) => `(SELECT json_build_object('policy', p.id, 'connector', p.connector_id,
    'twoStep', p.two_step_required, 'minLength', p.password_min_length, 'maxAgeDays', p.password_max_age_days,
    'idle', p.idle_timeout_seconds, 'maxSession', p.max_session_seconds, 'reauthAfter', floor(extract(epoch FROM p.reauthenticate_after)))::text
  FROM authentication_policies p
  WHERE p.organization_id = ${organization}
    AND (p.is_default OR p.id IN (SELECT pm.policy_id FROM authentication_policy_members pm WHERE pm.account_id = ${account}))
  ORDER BY p.is_default LIMIT 1)`;

/**
 * Who manages the account besides its owner (`account_managers`, decision 0030), as rows of
 * [kind, id, name, rules] — an organization by verified domain with the rules of the
 * authentication policy the account follows there (NULL: none), a Trello Enterprise from the
 * import (rules NULL) — ordered by kind. A text array rather than JSON and a scalar name lookup
 * rather than a join: this rides on every login and every token use, and each costs measurably
 * more (docs/benchmarks.md). Only read for an account whose `managed` flag (kept by a trigger,
 * migration 0019) says it has any.
 */
const MANAGERS = `CASE WHEN accounts.managed THEN ARRAY(SELECT ARRAY[am.kind, coalesce(am.organization_id, am.enterprise_id),
    coalesce((SELECT o.name FROM organizations o WHERE o.id = am.organization_id), am.enterprise_name, am.enterprise_id),
    CASE WHEN am.kind = 'organization' THEN ${policyRulesOf('am.account_id', 'am.organization_id')} END]
  FROM account_managers am WHERE am.account_id = accounts.id ORDER BY am.kind) END AS managers`;

/**
 * What the policy decision point needs besides the row (src/policy/policy.ts), in the same
 * statement: whether two-step verification is on, whether a Trello member is linked, and who
 * manages the account. Each is an indexed lookup by account id.
 */
const POLICY_COLUMNS = `EXISTS (SELECT 1 FROM totp_factors t WHERE t.account_id = accounts.id AND t.confirmed_at IS NOT NULL) AS two_step_enabled,
  EXISTS (SELECT 1 FROM trello_members m WHERE m.linked_account_id = accounts.id) AS trello_linked,
  ${MANAGERS}`;

/**
 * The domain part of an address as organization domains store it: lower-case ASCII, an
 * internationalised name as punycode (src/organizations/domain-name.ts). Empty when it has none.
 */
export function emailDomainOf(email: string): string {
  const domain = email.slice(email.lastIndexOf('@') + 1).toLowerCase();
  return domain ? domainToASCII(domain) || domain : '';
}

/**
 * The claims below lock the organization's row, then the domain's, `FOR KEY SHARE` (row locks
 * are taken in the order `FOR KEY SHARE OF` names the tables): a domain being removed, or its
 * organization deleted, in a transaction still open is waited for, and once the domain is gone
 * claims nothing, so the account goes on as on a domain nobody holds. Read without the lock, the
 * row from before the removal named a domain the insert's foreign key then found gone (23503: the
 * sign-up, the first Google or company login on that domain failed with a 500). The organization
 * first because that is the order a removal takes them (`organizations.lock`, then the domain;
 * decision 0078): the domain first deadlocked with it, the claim's foreign-key check waiting for
 * the organization's row the removal held while the removal waited for the domain's.
 *
 * Makes the organization holding the (verified, not failing) domain of the account's address its
 * organization manager, unless one already manages it — or, for an account it manages already,
 * records the domain it is on now. A failing domain claims nobody (claims frozen, decision 0028).
 * `$1` is the account id, `$2` the ASCII domain; returns the organization's id and name when the
 * account became managed by this statement.
 */
const CLAIM_BY_DOMAIN = `INSERT INTO account_managers (account_id, kind, organization_id, domain_id, since)
  SELECT $1, 'organization', d.organization_id, d.id, now()
  FROM organizations o JOIN organization_domains d ON d.organization_id = o.id
  WHERE d.domain = $2 AND d.state = 'verified' AND o.deleted_at IS NULL
  FOR KEY SHARE OF o, d
  ON CONFLICT (account_id, kind) DO UPDATE SET domain_id = excluded.domain_id WHERE account_managers.organization_id = excluded.organization_id
  RETURNING organization_id, (xmax = 0) AS inserted`;

/**
 * The tables `findForTokens` reads (the row, its managers and their names, and — for rules
 * the authentication policies: `authentication_policies`, `authentication_policy_members`, and anything named organization*): a write to one of them in this process
 * drops the token endpoints' account cache (src/oidc/token-accounts.ts). A query that makes the
 * token stages' subject out of another table must add it here.
 */
export const isTokenAccountTable = (table: string): boolean => table === 'accounts' || table === 'account_managers' || table.startsWith('organization') || table.startsWith('authentication_polic');

const COLUMNS = 'id, email, email_verified, name, nickname, picture, locale, zoneinfo, status, password_hash, password_changed_at, job_title, department, organization_name, location, profile_visibility, closed_at, delete_after, erased_at, two_step_required, created_at, updated_at';

/**
 * The password login's lookup of the account at an address (`email`: the SQL naming it), with
 * the decision point's columns and `trello_linkable`: `findForLogin`, and the password step's
 * one statement (src/persistence/queries/password-step.ts).
 */
export const loginAccountSql = (email: string) => `SELECT ${COLUMNS}, ${POLICY_COLUMNS},
     NOT EXISTS (SELECT 1 FROM trello_members l WHERE l.linked_account_id = accounts.id)
       AND EXISTS (SELECT 1 FROM trello_member_emails e JOIN trello_members m ON m.member_id = e.member_id
                   WHERE lower(e.email) = lower(${email}) AND e.verified AND m.linked_account_id IS NULL) AS trello_linkable
   FROM accounts WHERE lower(email) = lower(${email})`;

export function createAccountQueries(db: Queryable) {
  return {
    /** Pass `tx` to read inside a transaction. */
    async findById(id: string, tx: Queryable = db): Promise<AccountRow | undefined> {
      const { rows } = await tx.query<AccountRow>(`SELECT ${COLUMNS} FROM accounts WHERE id = $1`, [id]);
      return rows[0];
    },

    /** The row with what the policy decision point needs, in one statement (refresh, userinfo, settings). */
    async findWithPolicy(id: string, tx: Queryable = db): Promise<AccountRow | undefined> {
      const { rows } = await tx.query<AccountRow>(`SELECT ${COLUMNS}, ${POLICY_COLUMNS} FROM accounts WHERE id = $1`, [id]);
      return rows[0];
    },

    /**
     * The row with what the decision point's token stages need (refresh, userinfo, our APIs, a
     * session reused at /auth): status, two-step required and the managers — not whether
     * two-step is on or a Trello member linked, which only logins and settings ask about. The
     * account read on every refresh, so it carries no more than that.
     */
    async findForTokens(id: string): Promise<AccountRow | undefined> {
      const { rows } = await db.query<AccountRow>(`SELECT ${COLUMNS}, ${MANAGERS} FROM accounts WHERE id = $1`, [id]);
      return rows[0];
    },

    /** `email` must already be normalised; the unique index is on lower(email). */
    /**
     * The login lookup. It also says whether two-step verification is on, so a password login
     * needs no second round trip to know whether to ask for a code.
     */
    async findByEmail(email: string, tx: Queryable = db): Promise<AccountRow | undefined> {
      const { rows } = await tx.query<AccountRow>(
        `SELECT ${COLUMNS}, ${POLICY_COLUMNS} FROM accounts WHERE lower(email) = lower($1)`,
        [email],
      );
      return rows[0];
    },

    /**
     * The password login's lookup: `findByEmail` plus `trello_linkable`, so that a successful
     * login needs no second statement to know whether to offer the Trello link.
     */
    async findForLogin(email: string): Promise<AccountRow | undefined> {
      const { rows } = await db.query<AccountRow>(loginAccountSql('$1'), [email]);
      return rows[0];
    },

    insert(account: NewAccount): Promise<AccountRow> {
      return this.insertWith(db, account);
    },

    /**
     * Inserts inside the caller's transaction. Every path that creates an account comes here
     * (sign-up, Google, Trello linking and the bulk migration, the CLI): an address on a domain an
     * organization has verified makes the account managed by it from its creation, in the same
     * statement (decision 0030).
     */
    /**
     * Test data in bulk (`seed accounts`): one row per id, verified, all with the one
     * `passwordHash`; the address and name of row k (k = `firstIndex` + its place in `ids`) are
     * first.last.k@domain from the given lists. One statement per batch; an address already
     * taken is skipped. Returns how many rows were inserted.
     */
    async insertSeeded(batch: { ids: string[]; firstIndex: number; passwordHash: string; now: Date; firstNames: string[]; lastNames: string[]; domains: string[] }): Promise<number> {
      const { rowCount } = await db.query(
        `INSERT INTO accounts (id, email, email_verified, name, password_hash, password_changed_at, created_at, updated_at)
         SELECT t.id, lower(t.first || '.' || t.last || '.' || t.k || '@' || t.domain), true, t.first || ' ' || t.last, $3, $4, $4, $4
         FROM (
           SELECT u.id, u.n + $2 - 1 AS k,
                  ($5::text[])[1 + ((u.n + $2 - 1) % cardinality($5::text[]))::int] AS first,
                  ($6::text[])[1 + ((u.n + $2 - 1) / cardinality($5::text[]) % cardinality($6::text[]))::int] AS last,
                  ($7::text[])[1 + ((u.n + $2 - 1) * 7919 % cardinality($7::text[]))::int] AS domain
           FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n)) t
         ON CONFLICT (lower(email)) DO NOTHING`,
        [batch.ids, batch.firstIndex, batch.passwordHash, batch.now, batch.firstNames, batch.lastNames, batch.domains],
      );
      return rowCount;
    },

    async insertWith(tx: Queryable, account: NewAccount): Promise<AccountRow> {
      const { rows } = await tx.query<AccountRow>(
        `WITH inserted AS (
           INSERT INTO accounts (id, email, email_verified, name, nickname, locale, zoneinfo, password_hash, password_changed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $8::text IS NULL THEN NULL ELSE now() END)
           RETURNING ${COLUMNS}
         ), claimed AS (
           INSERT INTO account_managers (account_id, kind, organization_id, domain_id, since)
           SELECT i.id, 'organization', d.organization_id, d.id, now()
           FROM organizations o JOIN organization_domains d ON d.organization_id = o.id AND d.domain = $9 AND d.state = 'verified' CROSS JOIN inserted i
           WHERE o.deleted_at IS NULL
           FOR KEY SHARE OF o, d
           RETURNING account_id
         )
         SELECT inserted.* FROM inserted`,
        [account.id, account.email, account.emailVerified, account.name ?? null, account.nickname ?? null,
          account.locale ?? null, account.zoneinfo ?? null, account.passwordHash ?? null, emailDomainOf(account.email)],
      );
      return rows[0]!;
    },

    /** Whether `email` was retired from some account: reserved for it, usable by nobody (migration 0013). */
    async isRetired(email: string, tx: Queryable = db): Promise<boolean> {
      const { rows } = await tx.query('SELECT 1 FROM retired_emails WHERE lower(email) = lower($1)', [email]);
      return rows.length > 0;
    },

    /** Replaces the stored hash of the same password with one at current parameters. */
    async replacePasswordHash(id: string, previousHash: string, nextHash: string): Promise<void> {
      // Conditional on the old hash so a concurrent password change is never overwritten.
      await db.query('UPDATE accounts SET password_hash = $3 WHERE id = $1 AND password_hash = $2', [id, previousHash, nextHash]);
    },

    /** No password works any more (an undone email change, decision 0085): only a reset link sets one. */
    async clearPassword(tx: Queryable, id: string, now: Date): Promise<void> {
      await tx.query('UPDATE accounts SET password_hash = NULL, password_changed_at = $2, updated_at = $2 WHERE id = $1', [id, now]);
    },

    async setPassword(tx: Queryable, id: string, hash: string, now: Date): Promise<void> {
      await tx.query('UPDATE accounts SET password_hash = $2, password_changed_at = $3, updated_at = $3 WHERE id = $1', [id, hash, now]);
    },

    /** Replaces the editable profile fields and their visibility. */
    async updateProfile(id: string, fields: { name: string | null; nickname: string | null; job_title: string | null; department: string | null; organization_name: string | null; location: string | null; zoneinfo: string | null }, visibility: Record<string, string>, now: Date): Promise<void> {
      await db.query(
        `UPDATE accounts SET name = $2, nickname = $3, job_title = $4, department = $5, organization_name = $6, location = $7,
           zoneinfo = $8, profile_visibility = $9::jsonb, updated_at = $10 WHERE id = $1`,
        [id, fields.name, fields.nickname, fields.job_title, fields.department, fields.organization_name, fields.location, fields.zoneinfo, JSON.stringify(visibility), now],
      );
    },

    /**
     * Changes the address. On a domain an organization has verified, an account nobody manages
     * becomes managed by it (as a new account there would be), and one it manages records the
     * domain it is on now. Returns the organization that started managing the account, if any.
     */
    async setEmail(tx: Queryable, id: string, email: string, now: Date): Promise<{ claimedBy?: string }> {
      await tx.query('UPDATE accounts SET email = $2, email_verified = true, updated_at = $3 WHERE id = $1', [id, email, now]);
      const { rows } = await tx.query<{ organization_id: string; inserted: boolean }>(CLAIM_BY_DOMAIN, [id, emailDomainOf(email)]);
      const claimed = rows.find((r) => r.inserted);
      return claimed ? { claimedBy: claimed.organization_id } : {};
    },

    async setName(tx: Queryable, id: string, name: string | null, now: Date): Promise<void> {
      await tx.query('UPDATE accounts SET name = $2, updated_at = $3 WHERE id = $1', [id, name, now]);
    },

    /**
     * Deactivates an active account (an admin's act): no login, no token (the decision point
     * reads the status). With `deleteAfter`, the sweeper erases it then unless the deletion is
     * cancelled. A deactivated account may be given a deletion date later. False when the
     * account is closed or erased.
     */
    async deactivate(tx: Queryable, id: string, now: Date, deleteAfter: Date | null): Promise<boolean> {
      const { rowCount } = await tx.query(
        `UPDATE accounts SET status = 'deactivated', delete_after = COALESCE($3, delete_after), updated_at = $2
         WHERE id = $1 AND status IN ('active', 'deactivated') AND erased_at IS NULL`,
        [id, now, deleteAfter],
      );
      return rowCount === 1;
    },

    /** Reactivates a deactivated account (and cancels its deletion, if one was due). */
    async reactivate(tx: Queryable, id: string, now: Date): Promise<boolean> {
      const { rowCount } = await tx.query(
        `UPDATE accounts SET status = 'active', delete_after = NULL, updated_at = $2 WHERE id = $1 AND status = 'deactivated' AND erased_at IS NULL`,
        [id, now],
      );
      return rowCount === 1;
    },

    /** Cancels a pending deletion of a deactivated account; it stays deactivated. */
    async cancelDeletion(tx: Queryable, id: string, now: Date): Promise<boolean> {
      const { rowCount } = await tx.query(
        `UPDATE accounts SET delete_after = NULL, updated_at = $2 WHERE id = $1 AND status = 'deactivated' AND delete_after IS NOT NULL AND erased_at IS NULL`,
        [id, now],
      );
      return rowCount === 1;
    },

    /**
     * Whether `viewerId` is in an organization with `accountId`, for profile visibility's
     * "Organization" audience (decision 0010): the viewer is an admin or member of an
     * organization that manages the account, or both accounts are managed by one organization.
     * One statement, by the indexes on account_managers and organization_members.
     */
    async shareOrganization(viewerId: string, accountId: string): Promise<boolean> {
      const { rows } = await db.query(
        `SELECT 1 FROM account_managers target
         WHERE target.account_id = $2 AND target.kind = 'organization' AND (
           EXISTS (SELECT 1 FROM organization_members m WHERE m.organization_id = target.organization_id AND m.account_id = $1)
           OR EXISTS (SELECT 1 FROM account_managers v WHERE v.account_id = $1 AND v.kind = 'organization' AND v.organization_id = target.organization_id))`,
        [viewerId, accountId],
      );
      return rows.length > 0;
    },

    async close(tx: Queryable, id: string, now: Date, deleteAfter: Date): Promise<boolean> {
      const { rowCount } = await tx.query(
        `UPDATE accounts SET status = 'closed', closed_at = $2, delete_after = $3, updated_at = $2 WHERE id = $1 AND status = 'active'`,
        [id, now, deleteAfter],
      );
      return rowCount === 1;
    },

    /** Cancels a closure during its grace period. */
    async reopen(id: string, now: Date, tx: Queryable = db): Promise<boolean> {
      const { rowCount } = await tx.query(
        `UPDATE accounts SET status = 'active', closed_at = NULL, delete_after = NULL, updated_at = $2
         WHERE id = $1 AND status = 'closed' AND erased_at IS NULL AND delete_after > $2`,
        [id, now],
      );
      return rowCount === 1;
    },

    /**
     * Erases the personal data of closed accounts whose grace period is over, and of accounts an
     * organization's admin deleted (deactivated with a deletion date). The row (and its id, which
     * the audit trail refers to) stays; the address becomes free for a new account.
     */
    async eraseDue(tx: Queryable, now: Date, limit: number): Promise<string[]> {
      const { rows } = await tx.query<{ id: string }>(
        `UPDATE accounts SET email = 'erased:' || id, email_verified = false, name = NULL, nickname = NULL, picture = NULL,
           locale = NULL, zoneinfo = NULL, password_hash = NULL, job_title = NULL, department = NULL,
           organization_name = NULL, location = NULL, profile_visibility = '{}'::jsonb, erased_at = $1, updated_at = $1
         WHERE id IN (SELECT id FROM accounts WHERE status IN ('closed', 'deactivated') AND erased_at IS NULL AND delete_after <= $1 LIMIT $2)
         RETURNING id`,
        [now, limit],
      );
      return rows.map((r) => r.id);
    },
  };
}

export type AccountQueries = ReturnType<typeof createAccountQueries>;
