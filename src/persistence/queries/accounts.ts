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
  /** Only from `findByEmail` and `findWithPolicy`: the Trello Enterprises that manage the account (legacy data). */
  trello_enterprises?: { id: string; name: string | null }[];
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
 * What the policy decision point needs besides the row (src/policy/policy.ts), in the same
 * statement: whether two-step verification is on, whether a Trello member is linked, and the
 * Trello Enterprises that manage the account. Each is an indexed lookup by account id.
 */
const POLICY_COLUMNS = `EXISTS (SELECT 1 FROM totp_factors t WHERE t.account_id = accounts.id AND t.confirmed_at IS NOT NULL) AS two_step_enabled,
  EXISTS (SELECT 1 FROM trello_members m WHERE m.linked_account_id = accounts.id) AS trello_linked,
  (SELECT coalesce(json_agg(json_build_object('id', m.enterprise_id, 'name', m.enterprise_name)), '[]'::json)
     FROM trello_members m WHERE m.linked_account_id = accounts.id AND m.enterprise_id IS NOT NULL) AS trello_enterprises`;

const COLUMNS = 'id, email, email_verified, name, nickname, picture, locale, zoneinfo, status, password_hash, password_changed_at, job_title, department, organization_name, location, profile_visibility, closed_at, delete_after, erased_at, two_step_required, created_at, updated_at';

export function createAccountQueries(db: Queryable) {
  return {
    /** Pass `tx` to read inside a transaction. */
    async findById(id: string, tx: Queryable = db): Promise<AccountRow | undefined> {
      const { rows } = await tx.query<AccountRow>(`SELECT ${COLUMNS} FROM accounts WHERE id = $1`, [id]);
      return rows[0];
    },

    /** The row with what the policy decision point needs, in one statement (refresh, userinfo, settings). */
    async findWithPolicy(id: string): Promise<AccountRow | undefined> {
      const { rows } = await db.query<AccountRow>(`SELECT ${COLUMNS}, ${POLICY_COLUMNS} FROM accounts WHERE id = $1`, [id]);
      return rows[0];
    },

    /** `email` must already be normalised; the unique index is on lower(email). */
    /**
     * The login lookup. It also says whether two-step verification is on, so a password login
     * needs no second round trip to know whether to ask for a code.
     */
    async findByEmail(email: string): Promise<AccountRow | undefined> {
      const { rows } = await db.query<AccountRow>(
        `SELECT ${COLUMNS}, ${POLICY_COLUMNS} FROM accounts WHERE lower(email) = lower($1)`,
        [email],
      );
      return rows[0];
    },

    insert(account: NewAccount): Promise<AccountRow> {
      return this.insertWith(db, account);
    },

    /** Inserts inside the caller's transaction. */
    async insertWith(tx: Queryable, account: NewAccount): Promise<AccountRow> {
      const { rows } = await tx.query<AccountRow>(
        `INSERT INTO accounts (id, email, email_verified, name, nickname, locale, zoneinfo, password_hash, password_changed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $8::text IS NULL THEN NULL ELSE now() END)
         RETURNING ${COLUMNS}`,
        [account.id, account.email, account.emailVerified, account.name ?? null, account.nickname ?? null,
          account.locale ?? null, account.zoneinfo ?? null, account.passwordHash ?? null],
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

    async setEmail(tx: Queryable, id: string, email: string, now: Date): Promise<void> {
      await tx.query('UPDATE accounts SET email = $2, email_verified = true, updated_at = $3 WHERE id = $1', [id, email, now]);
    },

    async close(tx: Queryable, id: string, now: Date, deleteAfter: Date): Promise<boolean> {
      const { rowCount } = await tx.query(
        `UPDATE accounts SET status = 'closed', closed_at = $2, delete_after = $3, updated_at = $2 WHERE id = $1 AND status = 'active'`,
        [id, now, deleteAfter],
      );
      return rowCount === 1;
    },

    /** Cancels a closure during its grace period. */
    async reopen(id: string, now: Date): Promise<boolean> {
      const { rowCount } = await db.query(
        `UPDATE accounts SET status = 'active', closed_at = NULL, delete_after = NULL, updated_at = $2
         WHERE id = $1 AND status = 'closed' AND erased_at IS NULL AND delete_after > $2`,
        [id, now],
      );
      return rowCount === 1;
    },

    /**
     * Erases the personal data of closed accounts whose grace period is over. The row (and its id,
     * which the audit trail refers to) stays; the address becomes free for a new account.
     */
    async eraseDue(tx: Queryable, now: Date, limit: number): Promise<string[]> {
      const { rows } = await tx.query<{ id: string }>(
        `UPDATE accounts SET email = 'erased:' || id, email_verified = false, name = NULL, nickname = NULL, picture = NULL,
           locale = NULL, zoneinfo = NULL, password_hash = NULL, job_title = NULL, department = NULL,
           organization_name = NULL, location = NULL, profile_visibility = '{}'::jsonb, erased_at = $1, updated_at = $1
         WHERE id IN (SELECT id FROM accounts WHERE status = 'closed' AND erased_at IS NULL AND delete_after <= $1 LIMIT $2)
         RETURNING id`,
        [now, limit],
      );
      return rows.map((r) => r.id);
    },
  };
}

export type AccountQueries = ReturnType<typeof createAccountQueries>;
