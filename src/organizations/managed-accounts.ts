import { domainToUnicode } from 'node:url';
import { csvRecord } from '../shared/csv.ts';
import { displayText } from '../shared/display-text.ts';
import type { Database, Queryable } from '../persistence/db.ts';
import { emailDomainOf, type AccountQueries } from '../persistence/queries/accounts.ts';
import type { AccountManagerQueries, ManagedAccountRow, ManagedStatusFilter } from '../persistence/queries/account-managers.ts';
import type { OrganizationQueries } from '../persistence/queries/organizations.ts';
import { DOMAIN_COLUMNS, type DomainRow, type OrganizationDomainQueries } from '../persistence/queries/organization-domains.ts';
import type { Outbox } from '../mail/outbox.ts';
import type { Clock } from '../shared/clock.ts';
import { normalizeEmail } from '../identity/email-address.ts';
import { aboutOthers, type RequestMeta, type SecurityEvents, type SecurityEventType } from '../identity/security-events.ts';
import type { AccessProblem, OrganizationService } from './organizations.ts';
import type { AdminAudit, OrganizationAction } from './admin-audit.ts';

/**
 * Managed accounts (docs/flows/organizations.md "Managed accounts", decision 0030): claiming the
 * accounts on a verified domain, who manages an account (for the settings pages), and the
 * actions an organization's admins take on the accounts it manages — list, search, export,
 * edit, deactivate, reactivate, delete (with a grace period) and cancel a deletion.
 *
 * Authorization lives here, as in organizations.ts: the actor must be an admin of the
 * organization (`organization.not_found` / `organization.forbidden` otherwise), and the account
 * must be managed by that organization — any other account, of another organization or of
 * nobody, answers `account.not_found`, so account ids cannot be probed through an organization.
 */

/** How long an admin's deletion waits before the account is erased (issue 12: 14 days). */
export const MANAGED_DELETION_GRACE_DAYS = 14;
/** The largest page of a list or preview. */
export const MAX_PAGE_SIZE = 100;
/** The name an admin may give an account (as the profile allows). */
const MAX_NAME = 200;

export type ManagedProblem = AccessProblem | 'account.not_found' | 'account.self' | 'account.state' | 'account.admin';

export interface ManagedAccountView {
  id: string;
  email: string;
  name: string | null;
  /** `pending_deletion`: deactivated, erased at `deleteAfter` unless an admin cancels. */
  status: 'active' | 'deactivated' | 'pending_deletion' | 'closed';
  deleteAfter: Date | null;
  createdAt: Date;
  managedSince: Date | null;
}

/** A manager as the account's owner sees it (settings pages), with whom to ask. */
export interface ManagementView {
  kind: 'organization' | 'trello_enterprise';
  name: string;
  /** Addresses of the organization's admins (up to three); none for a Trello Enterprise. */
  contacts: string[];
}

export interface ListFilter {
  /** A prefix of the address or the name. */
  query?: unknown;
  status?: unknown;
  /** The `next` of the previous page. */
  after?: unknown;
  limit?: unknown;
}

/** The account's own security event for each admin action on it. */
const ACCOUNT_EVENTS: Partial<Record<OrganizationAction, SecurityEventType>> = {
  'account.updated': 'organization.account_updated',
  'account.deactivated': 'organization.account_deactivated',
  'account.reactivated': 'organization.account_reactivated',
  'account.deletion_scheduled': 'organization.account_deletion_scheduled',
  'account.deletion_cancelled': 'organization.account_deletion_cancelled',
};

const STATUS_FILTERS: readonly ManagedStatusFilter[] = ['active', 'deactivated', 'pending_deletion'];

const view = (row: ManagedAccountRow): ManagedAccountView => ({
  id: row.id,
  email: row.email,
  name: row.name,
  status: row.status === 'deactivated' && row.delete_after ? 'pending_deletion' : row.status,
  deleteAfter: row.delete_after,
  createdAt: row.created_at,
  managedSince: row.since ?? null,
});

/** The forms an address's domain may take in `accounts.email` (stored as typed: Unicode or ASCII). */
function domainForms(domain: string): string[] {
  const unicode = domainToUnicode(domain);
  return unicode && unicode !== domain ? [domain, unicode] : [domain];
}

export function createManagedAccounts(deps: {
  db: Database;
  accounts: AccountQueries;
  managers: AccountManagerQueries;
  organizations: OrganizationQueries;
  domains: OrganizationDomainQueries;
  /** The organization service's authorization (the actor's membership and role). */
  authorize: OrganizationService['authorize'];
  outbox: Outbox;
  /** The organization's audit trail (decision 0029): what its admins did. */
  audit: AdminAudit;
  /** The account's own trail (its owner sees what an admin did to it). */
  events: SecurityEvents;
  clock: Clock;
  issuer: string;
  /** Ends every session of the account, revokes its grants and tokens, sends back-channel logouts. */
  signOutEverywhere: (accountId: string) => Promise<unknown>;
  graceDays?: number;
}) {
  const { db, accounts, managers, organizations, domains, outbox, clock } = deps;
  const now = () => new Date(clock.now());
  const graceDays = deps.graceDays ?? MANAGED_DELETION_GRACE_DAYS;

  /**
   * The audit trail of admin actions: the one call site of every action, in the transaction of
   * the change. The organization's trail (`organization_events`, decision 0029) records who did
   * what to which account; an action on one account is also written to that account's own
   * security events, with the actor and the organization, so its owner sees it.
   */
  async function audit(action: OrganizationAction, entry: { organizationId: string; actorId: string; target: { type: 'account' | 'domain'; id: string; label: string }; detail?: Record<string, unknown> }, meta: RequestMeta, tx: Queryable): Promise<void> {
    await deps.audit.record(tx, entry.organizationId, { action, actorId: entry.actorId, targetType: entry.target.type, targetId: entry.target.id, targetLabel: entry.target.label.slice(0, 320), detail: entry.detail }, meta);
    const accountEvent = ACCOUNT_EVENTS[action];
    if (accountEvent && entry.target.type === 'account') {
      await deps.events.record({ type: accountEvent, accountId: entry.target.id, detail: { actorId: entry.actorId, organizationId: entry.organizationId, ...entry.detail } }, aboutOthers(meta), tx);
    }
  }

  /** The organization's admins' addresses, whom a managed person asks. */
  async function adminContacts(organizationId: string, tx?: Queryable): Promise<string[]> {
    return (await organizations.members(organizationId, 'admin', tx)).slice(0, 3).map((m) => m.email);
  }

  /** The domain if it belongs to the organization. */
  async function domainOf(organizationId: string, domainId: unknown): Promise<DomainRow | undefined> {
    if (typeof domainId !== 'string' || domainId.length > 100) return undefined;
    const row = await domains.find(domainId);
    return row?.organization_id === organizationId ? row : undefined;
  }

  /** Whether a domain may claim now: verified (a pending one proves nothing; a failing one's claims are frozen). */
  const claimProblem = (row: DomainRow | undefined) =>
    !row ? 'domain.not_found' as const : row.state === 'pending' ? 'domain.not_verified' as const : row.state === 'failing' ? 'domain.claims_frozen' as const : undefined;

  const pageSize = (limit: unknown) => (typeof limit === 'number' && Number.isInteger(limit) && limit >= 1 ? Math.min(limit, MAX_PAGE_SIZE) : 50);
  const cursor = (after: unknown) => (typeof after === 'string' && after.length <= 320 ? after : undefined);

  /**
   * An admin's action on one account: the actor is an admin of the organization, the account is
   * another one that this organization manages; `act` runs in a transaction with the account row
   * locked.
   */
  /**
   * Runs an admin's action on an account the organization manages. `notOnAdmins`: the action
   * could take an admin's power away or take over their account (deactivate, delete, a new
   * address), so it is refused on the organization's own admins (`account.admin`): one admin
   * cannot lock out or take over another — they remove them as an admin first, which keeps an
   * active admin (`admin.last`). The organization's row is locked, so admins acting on each
   * other at once are taken one after the other.
   */
  async function onManaged<T>(actorId: string, organizationId: string, accountId: unknown, act: (tx: Queryable, target: ManagedAccountRow, organization: string) => Promise<T>, options: { notOnAdmins?: boolean } = {}): Promise<T | { ok: false; problem: ManagedProblem }> {
    const access = await deps.authorize(actorId, organizationId, 'admin');
    if (!access.ok) return access;
    if (typeof accountId !== 'string' || accountId.length > 100) return { ok: false, problem: 'account.not_found' };
    if (accountId === actorId) return { ok: false, problem: 'account.self' };
    return db.transaction(async (tx) => {
      // The organization's row first, then the account's: the order a release or a deletion takes
      // them in (organizations.ts), so an action racing one waits for it instead of deadlocking.
      if (!(await organizations.lock(tx, organizationId))) return { ok: false as const, problem: 'organization.not_found' as const };
      const target = await managers.managedBy(organizationId, accountId, tx, true);
      if (!target) return { ok: false as const, problem: 'account.not_found' as const };
      if (options.notOnAdmins && (await organizations.isAdmin(tx, organizationId, target.id))) return { ok: false as const, problem: 'account.admin' as const };
      return act(tx, target, access.name);
    });
  }

  /** The organization's managed accounts, by address: search by a prefix of address or name, filter by status, keyset paging. */
  async function list(actorId: string, organizationId: string, filter: ListFilter = {}): Promise<{ ok: true; accounts: ManagedAccountView[]; next?: string } | { ok: false; problem: AccessProblem | 'list.invalid' }> {
    const access = await deps.authorize(actorId, organizationId, 'admin');
    if (!access.ok) return access;
    if (filter.query !== undefined && (typeof filter.query !== 'string' || filter.query.length > 320)) return { ok: false, problem: 'list.invalid' };
    if (filter.status !== undefined && filter.status !== '' && !STATUS_FILTERS.includes(filter.status as ManagedStatusFilter)) return { ok: false, problem: 'list.invalid' };
    const limit = pageSize(filter.limit);
    const rows = await managers.listForOrganization(organizationId, {
      query: typeof filter.query === 'string' ? filter.query.trim().normalize('NFC') || undefined : undefined,
      status: (filter.status || undefined) as ManagedStatusFilter | undefined,
      after: cursor(filter.after),
      limit,
    });
    const last = rows.at(-1);
    return { ok: true, accounts: rows.map(view), ...(rows.length === limit && last ? { next: last.email } : {}) };
  }

  /**
   * The accounts among `accountIds` that this organization manages, by address (the console's
   * detail page and its bulk confirmation). Ids of any other account are left out — the same as
   * ids that do not exist — and so are duplicates; at most `MAX_PAGE_SIZE` ids are looked at.
   */
  async function find(actorId: string, organizationId: string, accountIds: unknown): Promise<{ ok: true; accounts: ManagedAccountView[] } | { ok: false; problem: AccessProblem | 'list.invalid' }> {
    const access = await deps.authorize(actorId, organizationId, 'admin');
    if (!access.ok) return access;
    if (!Array.isArray(accountIds) || accountIds.length > MAX_PAGE_SIZE) return { ok: false, problem: 'list.invalid' };
    const ids = [...new Set(accountIds.filter((id): id is string => typeof id === 'string' && id.length > 0 && id.length <= 100))];
    if (!ids.length) return { ok: true, accounts: [] };
    return { ok: true, accounts: (await managers.managedAmong(organizationId, ids)).map(view) };
  }

  return {
    /** Who manages the account and whom to ask, for the settings pages. */
    async managementOf(accountId: string): Promise<ManagementView[]> {
      const rows = await managers.ofAccount(accountId);
      return Promise.all(rows.map(async (m) => ({
        kind: m.kind,
        name: m.manager_name ?? '',
        contacts: m.kind === 'organization' && m.organization_id ? await adminContacts(m.organization_id) : [],
      })));
    },

    /**
     * What claiming a verified domain would do: how many accounts on it no organization manages
     * yet, and a page of them by address. Nothing changes.
     */
    async previewClaim(actorId: string, organizationId: string, domainId: unknown, page: { after?: unknown; limit?: unknown } = {}): Promise<
      { ok: true; domain: string; count: number; accounts: ManagedAccountView[]; next?: string } | { ok: false; problem: AccessProblem | 'domain.not_found' | 'domain.not_verified' | 'domain.claims_frozen' }
    > {
      const access = await deps.authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      const row = await domainOf(organizationId, domainId);
      const problem = claimProblem(row);
      if (problem) return { ok: false, problem };
      const limit = pageSize(page.limit);
      const found = await managers.claimable(domainForms(row!.domain), { after: cursor(page.after), limit });
      const last = found.accounts.at(-1);
      return { ok: true, domain: row!.domain, count: found.count, accounts: found.accounts.map(view), ...(found.accounts.length === limit && last ? { next: last.email } : {}) };
    },

    /**
     * Claims every account on the verified domain that no organization manages yet, in one
     * transaction, and tells each by mail (outbox, same transaction) which organization manages
     * it now. A failing domain claims nothing (claims frozen, decision 0028).
     */
    async claim(actorId: string, organizationId: string, domainId: unknown, meta: RequestMeta = {}): Promise<
      { ok: true; claimed: number } | { ok: false; problem: AccessProblem | 'domain.not_found' | 'domain.not_verified' | 'domain.claims_frozen' }
    > {
      const access = await deps.authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      const result = await db.transaction(async (tx) => {
        // The organization's row before the domain's, as a domain's removal takes them: the two
        // wait for each other instead of deadlocking.
        if (!(await organizations.lock(tx, organizationId))) return { ok: false as const, problem: 'organization.not_found' as const };
        // Read again in the transaction, locked: a re-check failing meanwhile freezes this claim.
        const { rows } = await tx.query<DomainRow>(`SELECT ${DOMAIN_COLUMNS} FROM organization_domains WHERE id = $1 AND organization_id = $2 FOR UPDATE`, [typeof domainId === 'string' ? domainId : '', organizationId]);
        const row = rows[0];
        const problem = claimProblem(row);
        if (problem) return { ok: false as const, problem };
        const claimed = await managers.claimDomain(tx, { organizationId, domainId: row!.id, domains: domainForms(row!.domain), now: now() });
        const admins = await adminContacts(organizationId, tx);
        for (const account of claimed) {
          await outbox.enqueue(tx, {
            to: account.email,
            template: 'account-managed',
            data: { name: account.name, email: account.email, organization: access.name, domain: domainToUnicode(row!.domain) || row!.domain, admins, settingsLink: `${deps.issuer}/account` },
          });
        }
        await audit('accounts.claimed', { organizationId, actorId, target: { type: 'domain', id: row!.id, label: row!.domain }, detail: { claimed: claimed.length } }, meta, tx);
        return { ok: true as const, claimed: claimed.length };
      });
      if (result.ok && result.claimed) outbox.kick();
      return result;
    },

    list,

    /** One account this organization manages (admins only); any other account is `account.not_found`. */
    async get(actorId: string, organizationId: string, accountId: unknown): Promise<{ ok: true; account: ManagedAccountView } | { ok: false; problem: AccessProblem | 'account.not_found' }> {
      const access = await deps.authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      if (typeof accountId !== 'string' || accountId.length > 100) return { ok: false, problem: 'account.not_found' };
      const row = await managers.managedBy(organizationId, accountId);
      return row ? { ok: true, account: view(row) } : { ok: false, problem: 'account.not_found' };
    },

    find,

    /** The same list (search and filter apply, not paging) as CSV, safe to open in a spreadsheet. */
    async exportCsv(actorId: string, organizationId: string, filter: Omit<ListFilter, 'after' | 'limit'> = {}): Promise<{ ok: true; csv: string; count: number } | { ok: false; problem: AccessProblem | 'list.invalid' }> {
      const lines = [csvRecord(['id', 'email', 'name', 'status', 'delete_after', 'created_at', 'managed_since'])];
      let after: string | undefined;
      let count = 0;
      for (;;) {
        const page = await list(actorId, organizationId, { ...filter, after, limit: MAX_PAGE_SIZE });
        if (!page.ok) return page;
        for (const a of page.accounts) {
          lines.push(csvRecord([a.id, a.email, a.name, a.status, a.deleteAfter, a.createdAt, a.managedSince]));
        }
        count += page.accounts.length;
        if (!page.next) break;
        after = page.next;
      }
      return { ok: true, csv: lines.join(''), count };
    },

    /**
     * Edits the name and/or the address of a managed account. The address may only move to
     * another verified domain of the same organization, and must be free (no account, not
     * retired for one); the old and the new address are both told, as with the owner's change.
     */
    async update(actorId: string, organizationId: string, accountId: unknown, input: { name?: unknown; email?: unknown }, meta: RequestMeta = {}): Promise<
      { ok: true; account: ManagedAccountView } | { ok: false; problem: ManagedProblem | 'account.name_invalid' | 'login.invalid_email' | 'email.same' | 'email.domain_not_verified' | 'signup.email_taken' }
    > {
      let name: string | null | undefined;
      if (input.name !== undefined) {
        if (input.name !== null && typeof input.name !== 'string') return { ok: false, problem: 'account.name_invalid' };
        // The same rule as the owner's own profile (src/shared/display-text.ts): no invisible or
        // reordering characters in a name shown to others and mailed.
        const cleaned = input.name === null ? { ok: true as const, value: '' } : displayText(input.name, MAX_NAME, { allowEmpty: true });
        if (!cleaned.ok) return { ok: false, problem: 'account.name_invalid' };
        name = cleaned.value || null;
      }
      let email: string | undefined;
      if (input.email !== undefined) {
        email = normalizeEmail(input.email);
        if (!email) return { ok: false, problem: 'login.invalid_email' };
      }
      try {
        const result = await onManaged(actorId, organizationId, accountId, async (tx, target, organization) => {
          const at = now();
          const changes: Record<string, unknown> = {};
          if (email !== undefined && email !== target.email.toLowerCase()) {
            // Moving another admin's address is refused (one admin cannot take over another);
            // their name may change, and the console's form, which always sends the address,
            // renames them like anyone else.
            if (await organizations.isAdmin(tx, organizationId, target.id)) return { ok: false as const, problem: 'account.admin' as const };
            const held = await domains.held(emailDomainOf(email), tx);
            if (!held || held.organization_id !== organizationId || held.state !== 'verified') return { ok: false as const, problem: 'email.domain_not_verified' as const };
            if ((await accounts.findByEmail(email, tx)) || (await accounts.isRetired(email, tx))) return { ok: false as const, problem: 'signup.email_taken' as const };
            await accounts.setEmail(tx, target.id, email, at);
            for (const to of [target.email, email]) {
              await outbox.enqueue(tx, {
                to,
                template: 'managed-email-changed',
                data: { name: name === undefined ? target.name : name, email: to, oldEmail: target.email, newEmail: email, organization, resetLink: `${deps.issuer}/password/forgot` },
              });
            }
            changes.email = { from: target.email, to: email };
          } else if (email !== undefined && input.name === undefined) {
            return { ok: false as const, problem: 'email.same' as const };
          }
          if (name !== undefined && name !== target.name) {
            await accounts.setName(tx, target.id, name, at);
            changes.name = true;
          }
          if (Object.keys(changes).length) await audit('account.updated', { organizationId, actorId, target: { type: 'account', id: target.id, label: email ?? target.email }, detail: changes }, meta, tx);
          const updated = (await managers.managedBy(organizationId, target.id, tx))!;
          return { ok: true as const, account: view(updated) };
        });
        if (result.ok) outbox.kick();
        return result;
      } catch (err) {
        // Someone took the address meanwhile: the unique index decided.
        if ((err as { code?: string }).code === '23505') return { ok: false, problem: 'signup.email_taken' };
        throw err;
      }
    },

    /**
     * Deactivates a managed account at once: the decision point refuses every login and token
     * from now on (it reads the status), and every browser session, grant, access and refresh
     * token ends, with a back-channel logout to each relying party the sessions used.
     */
    async deactivate(actorId: string, organizationId: string, accountId: unknown, meta: RequestMeta = {}): Promise<{ ok: true; account: ManagedAccountView } | { ok: false; problem: ManagedProblem }> {
      const result = await onManaged(actorId, organizationId, accountId, async (tx, target) => {
        if (target.status !== 'active') return { ok: false as const, problem: 'account.state' as const };
        await accounts.deactivate(tx, target.id, now(), null);
        await audit('account.deactivated', { organizationId, actorId, target: { type: 'account', id: target.id, label: target.email } }, meta, tx);
        return { ok: true as const, account: view({ ...target, status: 'deactivated' }) };
     }, { notOnAdmins: true });
      if (result.ok) await deps.signOutEverywhere(result.account.id);
      return result;
    },

    /** Lets a deactivated account sign in again; a pending deletion is cancelled with it. */
    async reactivate(actorId: string, organizationId: string, accountId: unknown, meta: RequestMeta = {}): Promise<{ ok: true; account: ManagedAccountView } | { ok: false; problem: ManagedProblem }> {
      return onManaged(actorId, organizationId, accountId, async (tx, target) => {
        if (!(await accounts.reactivate(tx, target.id, now()))) return { ok: false as const, problem: 'account.state' as const };
        await audit('account.reactivated', { organizationId, actorId, target: { type: 'account', id: target.id, label: target.email }, detail: target.delete_after ? { deletionCancelled: true } : {} }, meta, tx);
        return { ok: true as const, account: view({ ...target, status: 'active', delete_after: null }) };
      });
    },

    /**
     * Deletes a managed account: deactivated at once (as `deactivate`, sessions and tokens end),
     * erased by the sweeper after the grace period unless an admin cancels the deletion.
     */
    async delete(actorId: string, organizationId: string, accountId: unknown, meta: RequestMeta = {}): Promise<{ ok: true; account: ManagedAccountView; deleteAfter: Date } | { ok: false; problem: ManagedProblem }> {
      const deleteAfter = new Date(clock.now() + graceDays * 86_400_000);
      const result = await onManaged(actorId, organizationId, accountId, async (tx, target) => {
        if (target.status === 'closed' || target.delete_after) return { ok: false as const, problem: 'account.state' as const };
        await accounts.deactivate(tx, target.id, now(), deleteAfter);
        await audit('account.deletion_scheduled', { organizationId, actorId, target: { type: 'account', id: target.id, label: target.email }, detail: { deleteAfter: deleteAfter.toISOString() } }, meta, tx);
        return { ok: true as const, account: view({ ...target, status: 'deactivated', delete_after: deleteAfter }), deleteAfter, wasActive: target.status === 'active' };
     }, { notOnAdmins: true });
      if (!result.ok) return result;
      if (result.wasActive) await deps.signOutEverywhere(result.account.id);
      return { ok: true, account: result.account, deleteAfter: result.deleteAfter };
    },

    /** Cancels a pending deletion: the account stays deactivated until an admin reactivates it. */
    async cancelDeletion(actorId: string, organizationId: string, accountId: unknown, meta: RequestMeta = {}): Promise<{ ok: true; account: ManagedAccountView } | { ok: false; problem: ManagedProblem }> {
      return onManaged(actorId, organizationId, accountId, async (tx, target) => {
        if (!(await accounts.cancelDeletion(tx, target.id, now()))) return { ok: false as const, problem: 'account.state' as const };
        await audit('account.deletion_cancelled', { organizationId, actorId, target: { type: 'account', id: target.id, label: target.email } }, meta, tx);
        return { ok: true as const, account: view({ ...target, delete_after: null }) };
      });
    },
  };
}

export type ManagedAccounts = ReturnType<typeof createManagedAccounts>;
