import type { Database, Queryable } from '../persistence/db.ts';
import type { AccountQueries } from '../persistence/queries/accounts.ts';
import type { AccountManagerQueries } from '../persistence/queries/account-managers.ts';
import type { OrganizationQueries, OrganizationRole } from '../persistence/queries/organizations.ts';
import { isHeldConflict, type DomainRow, type DomainState, type OrganizationDomainQueries } from '../persistence/queries/organization-domains.ts';
import type { Clock } from '../shared/clock.ts';
import { displayText } from '../shared/display-text.ts';
import { newId } from '../shared/ids.ts';
import type { Throttle } from '../identity/throttle.ts';
import { aboutOthers, type RequestMeta, type SecurityEvents } from '../identity/security-events.ts';
import { normalizeDomain, normalizeDomainSyntax, type DomainProblem } from './domain-name.ts';
import type { AdminAudit, AuditEventView, AuditMeta } from './admin-audit.ts';
import type { Release, ReleaseScope } from './release.ts';
import { instructionsFor, newVerificationToken, type CheckProblem, type CheckResult, type DomainVerifier, type VerificationMethod } from './domain-verification.ts';

/**
 * Organizations and their domains (docs/flows/organizations.md). Every method that acts for a
 * person takes the acting account first and checks it here, not in the HTTP layer: an
 * organization the actor does not belong to answers `organization.not_found` — the same as one
 * that does not exist, so ids cannot be probed — and a member who is not an admin gets
 * `organization.forbidden` for what only admins may do.
 */
export type AccessProblem = 'organization.not_found' | 'organization.forbidden' | 'account.inactive';

export interface OrganizationView {
  id: string;
  name: string;
  role: OrganizationRole;
  createdAt: Date;
}

export interface DomainView {
  id: string;
  organizationId: string;
  domain: string;
  state: DomainState;
  method: VerificationMethod | null;
  addedAt: Date;
  verifiedAt: Date | null;
  lastCheckedAt: Date | null;
  lastError: string | null;
  failingSince: Date | null;
  /** What to publish: the TXT record on the domain, or the file. */
  instructions: ReturnType<typeof instructionsFor>;
}

/** A summary of why verification failed, most telling first; `checks` has each method's own answer. */
export type VerificationProblem = 'verification.wrong_token' | 'verification.dns_error' | 'verification.not_found' | 'verification.http_error';

/**
 * Refused for now by a throttle (docs/flows/organizations.md, "Limits"): how long to wait. The
 * console shows the wait, the management API answers 429 with Retry-After (RFC 6585 §4).
 */
export type Throttled<P extends string> = { ok: false; problem: P; retryAfterSeconds: number };

export type VerifyResult =
  | { ok: true; domain: DomainView; method: VerificationMethod }
  | { ok: false; problem: AccessProblem | 'domain.not_found' | 'domain.taken' | 'domain.public_email' | 'domain.public_suffix' }
  | Throttled<'verification.throttled'>
  | { ok: false; problem: VerificationProblem; checks: CheckResult[]; domain: DomainView };

export interface AdminView {
  accountId: string;
  email: string;
  name: string | null;
  addedAt: Date;
  you: boolean;
}

export const MAX_ORGANIZATION_NAME = 100;
/** Domains one organization may add: a bound on what one admin can make the re-check worker fetch. */
export const MAX_DOMAINS_PER_ORGANIZATION = 50;

const PROBLEM_ORDER: CheckProblem[] = ['wrong_token', 'dns_error', 'not_found', 'http_error'];

export function createOrganizationService(deps: {
  db: Database;
  accounts: AccountQueries;
  organizations: OrganizationQueries;
  domains: OrganizationDomainQueries;
  verifier: DomainVerifier;
  managers: AccountManagerQueries;
  /** Every admin action is recorded here, in the transaction of the change (decision 0029). */
  audit: AdminAudit;
  clock: Clock;
  /** Where the HTTPS file is looked for (DOMAIN_VERIFICATION_HTTP_SCHEME / _PORT). */
  http: { httpScheme: 'https' | 'http'; httpPort: number };
  /** Limits creating organizations and "Verify now" (scopes organization-create, domain-verify, domain-verify-admin). */
  throttle: Pick<Throttle, 'hit'>;
  /** Organizations one account may be an admin of when it creates another (ORGANIZATIONS_PER_ACCOUNT). */
  organizationsPerAccount: number;
  /** An organization's deletion is written to each of its admins' security activity. */
  events: Pick<SecurityEvents, 'record'>;
  /** Releasing managed accounts, when a domain that manages them is removed or the organization deleted (decision 0078). */
  release: Release;
}) {
  const { db, accounts, organizations, domains, verifier, managers, audit, clock } = deps;
  const now = () => new Date(clock.now());

  const domainView = (row: DomainRow): DomainView => ({
    id: row.id,
    organizationId: row.organization_id,
    domain: row.domain,
    state: row.state,
    method: row.method,
    addedAt: row.added_at,
    verifiedAt: row.verified_at,
    lastCheckedAt: row.last_checked_at,
    lastError: row.last_error,
    failingSince: row.failing_since,
    instructions: instructionsFor(row.domain, row.verification_token, deps.http),
  });

  /** The actor's membership, or why it may not act. */
  async function authorize(actorId: string, organizationId: string, needed: OrganizationRole): Promise<{ ok: true; role: OrganizationRole; name: string } | { ok: false; problem: AccessProblem }> {
    if (typeof organizationId !== 'string' || organizationId.length > 100) return { ok: false, problem: 'organization.not_found' };
    const actor = await accounts.findById(actorId);
    if (!actor || actor.status !== 'active') return { ok: false, problem: 'account.inactive' };
    const membership = await organizations.membership(actorId, organizationId);
    if (!membership) return { ok: false, problem: 'organization.not_found' };
    if (needed === 'admin' && membership.role !== 'admin') return { ok: false, problem: 'organization.forbidden' };
    return { ok: true, role: membership.role, name: membership.name };
  }

  /** The domain if it belongs to the organization (a domain of another organization is not found). */
  async function domainOf(organizationId: string, domainId: string): Promise<DomainRow | undefined> {
    if (typeof domainId !== 'string' || domainId.length > 100) return undefined;
    const row = await domains.find(domainId);
    return row?.organization_id === organizationId ? row : undefined;
  }

  /**
   * Inside the transaction that removes a domain or deletes the organization (its row locked):
   * releases the scope's managed accounts (decision 0078), audited against `target`. Accounts the
   * console counts (not erased) need the admin's word (`release`); what an erasure left behind is
   * released with them, or alone, without asking anyone.
   */
  async function releaseIn(tx: Queryable, scope: ReleaseScope, target: { type: 'domain' | 'organization'; id: string; label: string }, actorId: string, options: { release?: boolean | undefined }, meta: RequestMeta): Promise<
    { ok: true; released: number } | { ok: false; problem: 'manages_accounts' } | { ok: false; problem: 'release.deactivated_accounts'; deactivated: number }
  > {
    if ((await deps.release.counts(scope, tx)).managed > 0 && !options.release) return { ok: false, problem: 'manages_accounts' };
    const result = await deps.release.release(tx, scope, meta);
    if (result.ok && result.released) {
      await audit.record(tx, scope.organizationId, { action: 'accounts.released', actorId, targetType: target.type, targetId: target.id, targetLabel: target.label, detail: { released: result.released } }, meta);
    }
    return result;
  }

  return {
    authorize,

    /**
     * Any active account can create an organization; it becomes its first admin. Bounded: an
     * account that is already an admin of ORGANIZATIONS_PER_ACCOUNT organizations creates no
     * more (`organization.limit`), and creating is throttled per account
     * (`organization.throttled`), so one account cannot fill the table.
     */
    async create(actorId: string, nameInput: unknown, meta: AuditMeta = {}): Promise<
      { ok: true; organization: OrganizationView } | { ok: false; problem: 'organization.name_invalid' | 'account.inactive' | 'organization.limit' } | Throttled<'organization.throttled'>
    > {
      // Shown to other people and mailed to invited addresses: no control, zero-width or
      // bidirectional-override characters, something visible (src/shared/display-text.ts).
      const cleaned = displayText(nameInput, MAX_ORGANIZATION_NAME);
      if (!cleaned.ok) return { ok: false, problem: 'organization.name_invalid' };
      const name = cleaned.value;
      const actor = await accounts.findById(actorId);
      if (!actor || actor.status !== 'active') return { ok: false, problem: 'account.inactive' };
      const gate = await deps.throttle.hit('organization-create', actorId, undefined);
      if (!gate.ok) return { ok: false, problem: 'organization.throttled', retryAfterSeconds: gate.retryAfterSeconds };
      const at = now();
      const row = await db.transaction(async (tx) => {
        if ((await organizations.lockAndCountAdminOf(tx, actorId)) >= deps.organizationsPerAccount) return undefined;
        const created = await organizations.insert(tx, { id: newId('org'), name, createdBy: actorId, now: at });
        await organizations.addMember(tx, { organizationId: created.id, accountId: actorId, role: 'admin', addedBy: null, now: at });
        await audit.record(tx, created.id, { action: 'organization.created', actorId, targetType: 'organization', targetId: created.id, targetLabel: name }, meta);
        return created;
      });
      if (!row) return { ok: false, problem: 'organization.limit' };
      return { ok: true, organization: { id: row.id, name: row.name, role: 'admin', createdAt: row.created_at } };
    },

    /** The organizations an account belongs to, with its role in each. */
    async listFor(accountId: string): Promise<OrganizationView[]> {
      const rows = await organizations.listForAccount(accountId);
      return rows.map((r) => ({ id: r.id, name: r.name, role: r.role, createdAt: r.created_at }));
    },

    async get(actorId: string, organizationId: string): Promise<{ ok: true; organization: OrganizationView } | { ok: false; problem: AccessProblem }> {
      const access = await authorize(actorId, organizationId, 'member');
      if (!access.ok) return access;
      const row = (await organizations.find(organizationId))!;
      return { ok: true, organization: { id: row.id, name: row.name, role: access.role, createdAt: row.created_at } };
    },

    /** A new name (admins only), shown from now on in the console, invitations and mail; audited with the old one. */
    async rename(actorId: string, organizationId: string, nameInput: unknown, meta: AuditMeta = {}): Promise<
      { ok: true; organization: OrganizationView; changed: boolean } | { ok: false; problem: AccessProblem | 'organization.name_invalid' }
    > {
      const access = await authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      const cleaned = displayText(nameInput, MAX_ORGANIZATION_NAME);
      if (!cleaned.ok) return { ok: false, problem: 'organization.name_invalid' };
      const name = cleaned.value;
      if (name !== access.name) {
        const renamed = await db.transaction(async (tx) => {
          // Under the row's lock: a deletion in flight finishes first, and a deleted organization is not renamed.
          if (!(await organizations.lock(tx, organizationId))) return false;
          await organizations.rename(tx, organizationId, name);
          await audit.record(tx, organizationId, { action: 'organization.renamed', actorId, targetType: 'organization', targetId: organizationId, targetLabel: name, detail: { from: access.name } }, meta);
          return true;
        });
        if (!renamed) return { ok: false, problem: 'organization.not_found' };
      }
      const row = (await organizations.find(organizationId))!;
      return { ok: true, organization: { id: row.id, name: row.name, role: access.role, createdAt: row.created_at }, changed: name !== access.name };
    },

    /**
     * Deletes the organization (decision 0077): admins only. An organization that manages
     * accounts is deleted only when the admin asked to release them (`release`, decision 0078),
     * in the same transaction. (The console asks for the organization's name first.)
     * Its domains are freed (another organization may verify them), its identity providers and
     * policies stop applying at once, its admins and invitations are gone; the audit trail stays
     * (append-only, decision 0029) with the deletion as its last record, and each admin's
     * security activity records it too.
     */
    async remove(actorId: string, organizationId: string, meta: RequestMeta = {}, options: { release?: boolean } = {}): Promise<
      { ok: true; name: string; released: number } | { ok: false; problem: AccessProblem | 'organization.manages_accounts' | 'release.deactivated_accounts'; deactivated?: number }
    > {
      const access = await authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      const outcome = await db.transaction(async (tx) => {
        // The row lock waits for a claim in flight (its foreign key holds a share lock on this
        // row) and holds back the next: the count below is the one the deletion acts on.
        if (!(await organizations.lock(tx, organizationId))) return { ok: false as const, problem: 'organization.not_found' as const };
        const result = await releaseIn(tx, { organizationId, organizationName: access.name }, { type: 'organization', id: organizationId, label: access.name }, actorId, options, meta);
        if (!result.ok) return result.problem === 'manages_accounts' ? { ok: false as const, problem: 'organization.manages_accounts' as const } : result;
        const { released } = result;
        const admins = await organizations.members(organizationId, 'admin', tx);
        // The trail's last record, written while the organization still takes one (migration 0029).
        await audit.record(tx, organizationId, { action: 'organization.deleted', actorId, targetType: 'organization', targetId: organizationId, targetLabel: access.name }, meta);
        await organizations.markDeleted(tx, organizationId, now());
        for (const admin of admins) {
          // The actor's own activity shows where it was done from; the other admins' do not.
          await deps.events.record({ type: 'organization.deleted', accountId: admin.account_id, detail: { organizationId, organization: access.name, by: actorId } }, admin.account_id === actorId ? meta : aboutOthers(meta), tx);
        }
        return { ok: true as const, name: access.name, released };
      });
      if (outcome.ok && outcome.released) deps.release.kick();
      return outcome;
    },

    /**
     * Adds a domain to verify and returns its token and what to publish. Adding a domain the
     * organization already has returns that one (same token). Refused: malformed names, public
     * mail providers, and a domain another organization holds.
     */
    async addDomain(actorId: string, organizationId: string, input: unknown, meta: AuditMeta = {}): Promise<
      { ok: true; domain: DomainView; existing: boolean } | { ok: false; problem: AccessProblem | DomainProblem | 'domain.taken' | 'domain.limit' }
    > {
      const access = await authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      const normalized = normalizeDomain(input);
      if (!normalized.ok) return normalized;
      const { domain } = normalized;
      const existing = await domains.findInOrganization(organizationId, domain);
      if (existing) return { ok: true, domain: domainView(existing), existing: true };
      const holder = await domains.held(domain);
      if (holder) return { ok: false, problem: 'domain.taken' };
      if ((await domains.listForOrganization(organizationId)).length >= MAX_DOMAINS_PER_ORGANIZATION) return { ok: false, problem: 'domain.limit' };
      try {
        const row = await db.transaction(async (tx) => {
          const inserted = await domains.insert(tx, { id: newId('dom'), organizationId, domain, token: newVerificationToken(), addedBy: actorId, now: now() });
          await audit.record(tx, organizationId, { action: 'domain.added', actorId, targetType: 'domain', targetId: inserted.id, targetLabel: domain }, meta);
          return inserted;
        });
        return { ok: true, domain: domainView(row), existing: false };
      } catch (err) {
        // Two admins adding the same domain at once: the second gets the first's row.
        if ((err as { code?: string }).code !== '23505') throw err;
        const row = await domains.findInOrganization(organizationId, domain);
        if (!row) throw err;
        return { ok: true, domain: domainView(row), existing: true };
      }
    },

    async listDomains(actorId: string, organizationId: string): Promise<{ ok: true; domains: DomainView[] } | { ok: false; problem: AccessProblem }> {
      const access = await authorize(actorId, organizationId, 'member');
      if (!access.ok) return access;
      return { ok: true, domains: (await domains.listForOrganization(organizationId)).map(domainView) };
    },

    /** One domain's state (pending / verified / failing), with its last check. */
    async domainState(actorId: string, organizationId: string, domainId: string): Promise<{ ok: true; domain: DomainView } | { ok: false; problem: AccessProblem | 'domain.not_found' }> {
      const access = await authorize(actorId, organizationId, 'member');
      if (!access.ok) return access;
      const row = await domainOf(organizationId, domainId);
      return row ? { ok: true, domain: domainView(row) } : { ok: false, problem: 'domain.not_found' };
    },

    /**
     * Checks the published token now (DNS record first, then the file). On success the domain
     * is verified (or verified again, when it was failing); on failure a pending domain keeps
     * the error for the admin, and the answer says why, per method.
     */
    async verifyDomain(actorId: string, organizationId: string, domainId: string, meta: AuditMeta = {}): Promise<VerifyResult> {
      const access = await authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      const row = await domainOf(organizationId, domainId);
      if (!row) return { ok: false, problem: 'domain.not_found' };
      // Each check costs DNS lookups, an outbound HTTPS fetch and an audit record: limited per
      // domain (an admin clicking again and again) and per admin (a loop over many domains).
      // Per domain *row*, not per name, so another organization adding the same name cannot
      // hold this one's verification back.
      for (const [scope, subject] of [['domain-verify-admin', actorId], ['domain-verify', row.id]] as const) {
        const gate = await deps.throttle.hit(scope, subject, undefined);
        if (!gate.ok) return { ok: false, problem: 'verification.throttled', retryAfterSeconds: gate.retryAfterSeconds };
      }
      // The lists of public providers and public suffixes may have grown since the domain was added.
      const stillAllowed = normalizeDomain(row.domain);
      if (!stillAllowed.ok) return { ok: false, problem: stillAllowed.problem === 'domain.public_suffix' ? 'domain.public_suffix' : 'domain.public_email' };
      const holder = await domains.held(row.domain);
      if (holder && holder.id !== row.id) return { ok: false, problem: 'domain.taken' };

      const outcome = await verifier.check(row.domain, row.verification_token);
      if (!outcome.ok) {
        const problem = PROBLEM_ORDER.find((p) => outcome.results.some((r) => !r.ok && r.problem === p)) ?? 'not_found';
        const summary = outcome.results.map((r) => (r.ok ? '' : r.detail)).filter(Boolean).join('; ');
        await db.transaction(async (tx) => {
          await domains.recordAttempt(row.id, summary, now(), tx);
          await audit.record(tx, organizationId, { action: 'domain.verification_failed', actorId, targetType: 'domain', targetId: row.id, targetLabel: row.domain, detail: { problem: `verification.${problem}` } }, meta);
        });
        const fresh = (await domains.find(row.id)) ?? row;
        return { ok: false, problem: `verification.${problem}`, checks: outcome.results, domain: domainView(fresh) };
      }
      try {
        const verified = await db.transaction(async (tx) => {
          const marked = await domains.markVerified(tx, row.id, outcome.method, now());
          await audit.record(tx, organizationId, { action: 'domain.verified', actorId, targetType: 'domain', targetId: row.id, targetLabel: row.domain, detail: { method: outcome.method } }, meta);
          return marked;
        });
        return { ok: true, domain: domainView(verified ?? row), method: outcome.method };
      } catch (err) {
        // Another organization proved the same domain between our check and this update.
        if (isHeldConflict(err)) return { ok: false, problem: 'domain.taken' };
        throw err;
      }
    },

    /**
     * Removes a domain and its token. A domain that manages accounts is removed only when the
     * admin asked to release them (`release`, decision 0078: nothing is released without someone
     * deciding it, 0028): in one transaction, the accounts released (each told), then the domain.
     */
    async removeDomain(actorId: string, organizationId: string, domainId: string, meta: RequestMeta = {}, options: { release?: boolean } = {}): Promise<
      { ok: true; domain: DomainView; released: number } | { ok: false; problem: AccessProblem | 'domain.not_found' | 'domain.manages_accounts' | 'release.deactivated_accounts'; deactivated?: number }
    > {
      const access = await authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      const row = await domainOf(organizationId, domainId);
      if (!row) return { ok: false, problem: 'domain.not_found' };
      const outcome = await db.transaction(async (tx) => {
        // The organization's row: a claim through this domain waits, and what is released is what is counted.
        if (!(await organizations.lock(tx, organizationId))) return { ok: false as const, problem: 'domain.not_found' as const };
        const result = await releaseIn(tx, { organizationId, organizationName: access.name, domainId: row.id, domain: row.domain }, { type: 'domain', id: row.id, label: row.domain }, actorId, options, meta);
        if (!result.ok) return result.problem === 'manages_accounts' ? { ok: false as const, problem: 'domain.manages_accounts' as const } : result;
        const { released } = result;
        const gone = await domains.remove(tx, organizationId, row.id);
        if (!gone) return { ok: false as const, problem: 'domain.not_found' as const };
        await audit.record(tx, organizationId, { action: 'domain.removed', actorId, targetType: 'domain', targetId: row.id, targetLabel: row.domain, detail: { state: row.state } }, meta);
        return { ok: true as const, domain: domainView(gone), released };
      });
      if (outcome.ok && outcome.released) deps.release.kick();
      return outcome;
    },

    /**
     * What removing a domain (`domainId`) or deleting the organization would release: how many
     * managed accounts, how many of them deactivated (which block it, decision 0078).
     */
    async releasePreview(actorId: string, organizationId: string, domainId?: string): Promise<{ ok: true; managed: number; deactivated: number } | { ok: false; problem: AccessProblem | 'domain.not_found' }> {
      const access = await authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      if (domainId !== undefined && !(await domainOf(organizationId, domainId))) return { ok: false, problem: 'domain.not_found' };
      return { ok: true, ...(await deps.release.counts({ organizationId, organizationName: access.name, domainId })) };
    },

    /** The organization's admins, oldest first. */
    async admins(actorId: string, organizationId: string): Promise<{ ok: true; admins: AdminView[] } | { ok: false; problem: AccessProblem }> {
      const access = await authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      const rows = await organizations.members(organizationId, 'admin');
      return { ok: true, admins: rows.map((r) => ({ accountId: r.account_id, email: r.email, name: r.name, addedAt: r.added_at, you: r.account_id === actorId })) };
    },

    /**
     * Removes an admin (`targetId` the actor itself: leaving). An organization keeps at least one
     * admin: the row lock on the organization makes two admins removing each other at once
     * answer `admin.last` to the second.
     */
    async removeAdmin(actorId: string, organizationId: string, targetId: string, meta: AuditMeta = {}): Promise<
      { ok: true; email: string; organizationName: string } | { ok: false; problem: AccessProblem | 'admin.not_found' | 'admin.last' }
    > {
      const access = await authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      if (typeof targetId !== 'string' || targetId.length > 100) return { ok: false, problem: 'admin.not_found' };
      return db.transaction(async (tx) => {
        await organizations.lock(tx, organizationId);
        const target = (await organizations.members(organizationId, 'admin', tx)).find((m) => m.account_id === targetId);
        if (!target) return { ok: false as const, problem: 'admin.not_found' as const };
        // Someone active must stay able to act for the organization.
        if ((await organizations.countActiveAdminsExcept(tx, organizationId, targetId)) === 0) return { ok: false as const, problem: 'admin.last' as const };
        await organizations.removeMember(tx, organizationId, targetId);
        const leaving = targetId === actorId;
        await audit.record(tx, organizationId, { action: leaving ? 'admin.left' : 'admin.removed', actorId, targetType: 'account', targetId, targetLabel: target.email }, meta);
        return { ok: true as const, email: target.email, organizationName: access.name };
      });
    },

    /** What the console's dashboard shows: domains, managed accounts, open invitations, recent admin activity. */
    async dashboard(actorId: string, organizationId: string): Promise<
      { ok: true; organization: OrganizationView; domains: DomainView[]; managedAccounts: number; pendingInvitations: number; recent: AuditEventView[] } | { ok: false; problem: AccessProblem }
    > {
      const access = await authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      const [row, domainRows, managedAccounts, invitations, recent] = await Promise.all([
        organizations.find(organizationId),
        domains.listForOrganization(organizationId),
        managers.countForOrganization(organizationId),
        organizations.openInvitations(organizationId, now()),
        audit.page(organizationId, { limit: 5 }),
      ]);
      return {
        ok: true,
        organization: { id: row!.id, name: row!.name, role: access.role, createdAt: row!.created_at },
        domains: domainRows.map(domainView),
        managedAccounts,
        pendingInvitations: invitations.length,
        recent: recent.events,
      };
    },

    /** A page of the audit log (admins only). */
    async auditPage(actorId: string, organizationId: string, options: { cursor?: string | undefined; limit?: number | undefined } = {}) {
      const access = await authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      return { ok: true as const, ...(await audit.page(organizationId, options)) };
    },

    /** The whole audit log, for the CSV export (admins only); read lazily in batches. */
    async auditExport(actorId: string, organizationId: string): Promise<{ ok: true; events: AsyncGenerator<AuditEventView> } | { ok: false; problem: AccessProblem }> {
      const access = await authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      return { ok: true, events: audit.all(organizationId) };
    },

    /**
     * Whether new accounts at `domain` must not be claimed now: its holder's last re-check
     * failed. Claiming (on verification, at sign-up) asks this first; accounts already managed
     * stay managed either way.
     */
    async claimsFrozen(domainInput: string): Promise<boolean> {
      const normalized = normalizeDomainSyntax(domainInput);
      if (!normalized.ok) return false;
      return (await domains.held(normalized.domain))?.state === 'failing';
    },

    /** The organization holding a domain (verified or failing), and whether its claims are frozen. */
    async holderOf(domainInput: string): Promise<{ organizationId: string; domainId: string; frozen: boolean } | undefined> {
      const normalized = normalizeDomainSyntax(domainInput);
      if (!normalized.ok) return undefined;
      const row = await domains.held(normalized.domain);
      return row ? { organizationId: row.organization_id, domainId: row.id, frozen: row.state === 'failing' } : undefined;
    },
  };
}

export type OrganizationService = ReturnType<typeof createOrganizationService>;
