import type { Queryable } from '../db.ts';
import { policyRulesOf } from './accounts.ts';

export type DomainState = 'pending' | 'verified' | 'failing';
export type VerificationMethod = 'dns' | 'https';

export interface DomainRow {
  id: string;
  organization_id: string;
  domain: string;
  verification_token: string;
  state: DomainState;
  method: VerificationMethod | null;
  added_at: Date;
  added_by: string;
  verified_at: Date | null;
  last_checked_at: Date | null;
  last_error: string | null;
  failing_since: Date | null;
}

/** A DomainRow's columns, named: a prepared `SELECT *` breaks when a column is added (decision 0070). */
export const DOMAIN_COLUMNS = 'id, organization_id, domain, verification_token, state, method, added_at, added_by, verified_at, last_checked_at, last_error, failing_since';
const COLUMNS = DOMAIN_COLUMNS;

/** Domains organizations claim and prove (`organization_domains`, migration 0015; docs/flows/organizations.md). */
/**
 * The organization holding `domain` (the SQL naming it; verified or failing), with its name and
 * its default policy's rules: the identifier step's home-realm discovery (`managerOfAddress`) and
 * the password step's one statement (src/persistence/queries/password-step.ts).
 */
export const domainHolderSql = (domain: string) => `SELECT d.organization_id, o.name, ${policyRulesOf('NULL', 'd.organization_id')} AS rules
   FROM organization_domains d JOIN organizations o ON o.id = d.organization_id
   WHERE d.domain = ${domain} AND d.state IN ('verified', 'failing')`;

export function createOrganizationDomainQueries(db: Queryable) {
  return {
    async insert(tx: Queryable, row: { id: string; organizationId: string; domain: string; token: string; addedBy: string; now: Date }): Promise<DomainRow> {
      const { rows } = await tx.query<DomainRow>(
        `INSERT INTO organization_domains (id, organization_id, domain, verification_token, state, added_at, added_by)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6) RETURNING ${COLUMNS}`,
        [row.id, row.organizationId, row.domain, row.token, row.now, row.addedBy],
      );
      return rows[0]!;
    },

    async find(id: string, tx: Queryable = db): Promise<DomainRow | undefined> {
      const { rows } = await tx.query<DomainRow>(`SELECT ${COLUMNS} FROM organization_domains WHERE id = $1`, [id]);
      return rows[0];
    },

    /**
     * Home-realm discovery (decision 0033): the organization holding the domain of an address
     * (verified, or failing — it still manages its accounts), with its default policy's rules
     * (JSON text, NULL when it has none) and the id of the account at the address, if any. One
     * statement by the domain's and the address's indexes; nothing for a domain nobody holds.
     */
    async managerOfAddress(email: string, domain: string, tx: Queryable = db): Promise<{ organization_id: string; name: string; rules: string | null; account_id: string | null } | undefined> {
      const { rows } = await tx.query<{ organization_id: string; name: string; rules: string | null; account_id: string | null }>(
        `SELECT h.*, (SELECT a.id FROM accounts a WHERE lower(a.email) = lower($1)) AS account_id
         FROM (${domainHolderSql('$2')}) h`,
        [email, domain],
      );
      return rows[0];
    },

    async findInOrganization(organizationId: string, domain: string, tx: Queryable = db): Promise<DomainRow | undefined> {
      const { rows } = await tx.query<DomainRow>(`SELECT ${COLUMNS} FROM organization_domains WHERE organization_id = $1 AND domain = $2`, [organizationId, domain]);
      return rows[0];
    },

    async listForOrganization(organizationId: string): Promise<DomainRow[]> {
      const { rows } = await db.query<DomainRow>(`SELECT ${COLUMNS} FROM organization_domains WHERE organization_id = $1 ORDER BY domain`, [organizationId]);
      return rows;
    },

    /** The organization holding `domain` (verified or failing), if any: at most one (a partial unique index). */
    async held(domain: string, tx: Queryable = db): Promise<DomainRow | undefined> {
      const { rows } = await tx.query<DomainRow>(`SELECT ${COLUMNS} FROM organization_domains WHERE domain = $1 AND state IN ('verified', 'failing')`, [domain]);
      return rows[0];
    },

    /**
     * Marks a domain verified (a pending one, or a held one proven again). When another
     * organization holds the domain by now, the partial unique index refuses the update with a
     * unique violation (`isHeldConflict`): the caller runs this in a transaction of its own.
     */
    async markVerified(tx: Queryable, id: string, method: VerificationMethod, now: Date): Promise<DomainRow | undefined> {
      const { rows } = await tx.query<DomainRow>(
        `UPDATE organization_domains SET state = 'verified', method = $2, verified_at = CASE WHEN state = 'pending' THEN $3 ELSE verified_at END,
           last_checked_at = $3, last_error = NULL, failing_since = NULL WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, method, now],
      );
      return rows[0];
    },

    /**
     * Removes a domain of the organization. The caller has checked it manages no account; the
     * foreign key from account_managers refuses the delete anyway if one was claimed meanwhile.
     */
    async remove(tx: Queryable, organizationId: string, id: string): Promise<DomainRow | undefined> {
      const { rows } = await tx.query<DomainRow>(`DELETE FROM organization_domains WHERE organization_id = $1 AND id = $2 RETURNING ${COLUMNS}`, [organizationId, id]);
      return rows[0];
    },

    /** A failed attempt on a pending domain: remembered for the admin, the state stays pending. */
    async recordAttempt(id: string, error: string, now: Date, tx: Queryable = db): Promise<void> {
      await tx.query(`UPDATE organization_domains SET last_checked_at = $2, last_error = $3 WHERE id = $1 AND state = 'pending'`, [id, now, error.slice(0, 500)]);
    },

    /**
     * Claims held domains due for a re-check: their `last_checked_at` moves to now, so another
     * instance does not check them meanwhile (the check itself runs outside any transaction).
     */
    async claimDueRechecks(now: Date, checkedBefore: Date, limit: number): Promise<DomainRow[]> {
      const { rows } = await db.query<DomainRow>(
        `UPDATE organization_domains SET last_checked_at = $1
         WHERE id IN (SELECT id FROM organization_domains WHERE state IN ('verified', 'failing') AND (last_checked_at IS NULL OR last_checked_at <= $2)
                      ORDER BY last_checked_at NULLS FIRST, id LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING ${COLUMNS}`,
        [now, checkedBefore, limit],
      );
      return rows;
    },

    /** A re-check passed: verified again (from failing too). */
    async recheckPassed(id: string, method: VerificationMethod, now: Date): Promise<void> {
      await db.query(
        `UPDATE organization_domains SET state = 'verified', method = $2, last_checked_at = $3, last_error = NULL, failing_since = NULL
         WHERE id = $1 AND state IN ('verified', 'failing')`,
        [id, method, now],
      );
    },

    /**
     * A re-check failed. Returns true when this turned a verified domain failing (the caller
     * warns the admins once per episode), false when it was failing already.
     */
    async recheckFailed(tx: Queryable, id: string, error: string, now: Date): Promise<boolean> {
      const { rows } = await tx.query<{ was: DomainState }>(
        `UPDATE organization_domains d SET state = 'failing', failing_since = COALESCE(d.failing_since, $3), last_checked_at = $3, last_error = $2
         FROM (SELECT id, state FROM organization_domains WHERE id = $1 FOR UPDATE) before
         WHERE d.id = before.id AND d.state IN ('verified', 'failing') RETURNING before.state AS was`,
        [id, error.slice(0, 500), now],
      );
      return rows[0]?.was === 'verified';
    },
  };
}

export type OrganizationDomainQueries = ReturnType<typeof createOrganizationDomainQueries>;

/** Whether a database error is the unique index on held domains (another organization holds it). */
export function isHeldConflict(err: unknown): boolean {
  const e = err as { code?: string; constraint?: string; message?: string };
  return e?.code === '23505' && (e.constraint === 'organization_domains__held' || /organization_domains__held/.test(e.message ?? ''));
}
