import type { Clock } from '../shared/clock.ts';
import type { Defer, Queryable } from '../persistence/db.ts';
import type { SecurityEventQueries, SecurityEventRow } from '../persistence/queries/security-events.ts';

/**
 * The security audit trail (docs/flows/security-activity.md): what happened to an account, when,
 * from where. Events that change an account are written in the transaction that changes it;
 * the others (a login, a failure) right after, on the request path.
 */
export const SECURITY_EVENT_TYPES = [
  'login.succeeded',
  'login.failed',
  'logout',
  'password.changed',
  'password.reset',
  'email.changed',
  // The old address's "this wasn't me" link put it back and locked out whoever changed it (decision 0085).
  'email.change_undone',
  'two_step.enabled',
  'two_step.disabled',
  'two_step.recovery_codes_regenerated',
  'recovery_code.used',
  'session.revoked',
  'grant.revoked',
  'account.closed',
  // A login within the closure's grace period reopened it (src/identity/account-closure.ts).
  'account.reopened',
  'account.deactivated',
  'trello.linked',
  'identity.linked',
  'login.retired_email',
  // An organization's admin acted on the account (src/organizations/managed-accounts.ts): detail
  // names the actor and the organization (the organization's own trail is organization_events).
  'organization.account_updated',
  'organization.account_deactivated',
  'organization.account_reactivated',
  'organization.account_deletion_scheduled',
  'organization.account_deletion_cancelled',
  // An organization this account was an admin of was deleted (src/organizations/organizations.ts).
  'organization.deleted',
  // The organization that managed the account released it: a domain removed, or the organization deleted (src/organizations/release.ts).
  'organization.account_released',
] as const;

export type SecurityEventType = (typeof SECURITY_EVENT_TYPES)[number];

/** Who asked, read off the HTTP request by `src/http/request-meta.ts`. */
export interface RequestMeta {
  ip?: string | null | undefined;
  userAgent?: string | null | undefined;
  requestId?: string | null | undefined;
  clientId?: string | null | undefined;
}

/**
 * The meta of an event written to another person's activity (an admin acted on their account, an
 * organization was deleted by a co-admin): the request id and the client, not the actor's
 * address or browser — those are the actor's, and the page would show them as the owner's own.
 */
export const aboutOthers = (meta: RequestMeta): RequestMeta => ({ requestId: meta.requestId, clientId: meta.clientId });

export interface SecurityEvent {
  type: SecurityEventType;
  accountId?: string | null | undefined;
  reason?: string | undefined;
  detail?: Record<string, unknown> | undefined;
}

export interface SecurityEventView {
  id: string;
  at: string;
  type: string;
  reason: string | null;
  clientId: string | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  detail: Record<string, unknown> | null;
}

export const MAX_PAGE = 100;

export function createSecurityEvents(deps: { queries: SecurityEventQueries; clock: Clock; defer?: Defer }) {
  const { queries, clock } = deps;

  const view = (row: SecurityEventRow): SecurityEventView => ({
    id: row.id,
    at: row.occurred_at.toISOString(),
    type: row.type,
    reason: row.reason,
    clientId: row.client_id,
    ip: row.ip,
    userAgent: row.user_agent,
    requestId: row.request_id,
    detail: row.detail,
  });

  return {
    /**
     * Appends one event; pass `tx` to make it part of the change it records. Without one, inside
     * a request whose writes are stored as it ends (`defer`), the row is stored with them, in the
     * same statement: a login's success and its audit row are committed together or not at all,
     * and the request's answer waits for that commit (a failure there is its answer, 503).
     */
    async record(event: SecurityEvent, meta: RequestMeta = {}, tx?: Queryable): Promise<void> {
      const row = {
        occurredAt: new Date(clock.now()),
        type: event.type,
        reason: event.reason,
        accountId: event.accountId,
        detail: event.detail,
        clientId: meta.clientId,
        ip: meta.ip,
        userAgent: meta.userAgent,
        requestId: meta.requestId,
      };
      if (!tx && deps.defer?.(queries.insertion(row))) return;
      await queries.insert(row, tx);
    },

    /**
     * A page of an account's events, newest first. `cursor` is the `next` of the previous page;
     * keyset paging on the id, so a page costs one index range scan however deep it is.
     */
    async page(accountId: string, options: { limit?: number | undefined; cursor?: string | undefined } = {}): Promise<{ events: SecurityEventView[]; next: string | undefined }> {
      const limit = Math.min(Math.max(options.limit ?? 20, 1), MAX_PAGE);
      const cursor = options.cursor && /^\d{1,18}$/.test(options.cursor) ? options.cursor : undefined;
      const rows = await queries.page(accountId, limit + 1, cursor);
      const events = rows.slice(0, limit).map(view);
      return { events, next: rows.length > limit ? events.at(-1)?.id : undefined };
    },

    forgetAccounts: (ids: string[]) => queries.forgetAccounts(ids),
  };
}

export type SecurityEvents = ReturnType<typeof createSecurityEvents>;
