import type { Queryable } from '../persistence/db.ts';
import type { NewOrganizationEvent, OrganizationEventQueries, OrganizationEventRow } from '../persistence/queries/organization-events.ts';
import type { Clock } from '../shared/clock.ts';
import { csvRecord } from '../shared/csv.ts';

/**
 * The audit trail of organization admins' actions (docs/flows/organizations.md, decision 0029):
 * who did what to which target, when, from which address. Each record is written in the
 * transaction of the change it records, so the log holds a change if and only if it happened.
 * Reading it is an admin's right: `page` and `all` take an organization the caller has already
 * authorized (the organization service does).
 */
export const ORGANIZATION_ACTIONS = [
  'organization.created',
  'organization.renamed',
  'organization.deleted',
  'domain.added',
  'domain.verified',
  'domain.verification_failed',
  'domain.removed',
  'invitation.sent',
  'invitation.revoked',
  'invitation.accepted',
  'admin.removed',
  'admin.left',
  // Managed accounts (src/organizations/managed-accounts.ts, decision 0030).
  'accounts.claimed',
  'accounts.released',
  'account.updated',
  'account.deactivated',
  'account.reactivated',
  'account.deletion_scheduled',
  'account.deletion_cancelled',
  // Company identity providers (src/federation/connectors.ts, decision 0033).
  'connector.created',
  'connector.updated',
  'connector.domains_changed',
  // Authentication policies (src/organizations/authentication-policies.ts, decision 0038).
  'policy.created',
  'policy.updated',
  'policy.deleted',
  'policy.default_set',
  'policy.signed_out',
  'account.policy_assigned',
] as const;

export type OrganizationAction = (typeof ORGANIZATION_ACTIONS)[number];

/** Where the request came from, read off it by the HTTP layer (`requestMeta`). */
export interface AuditMeta {
  ip?: string | null | undefined;
  requestId?: string | null | undefined;
  /** The OAuth client an admin acted through (the management API); recorded in the detail. */
  clientId?: string | null | undefined;
}

export interface AuditEntry {
  action: OrganizationAction;
  actorId: string | null;
  targetType?: NewOrganizationEvent['targetType'];
  targetId?: string | undefined;
  targetLabel?: string | undefined;
  detail?: Record<string, unknown> | undefined;
}

export interface AuditEventView {
  id: string;
  at: Date;
  action: string;
  actorId: string | null;
  actorEmail: string | null;
  targetType: string | null;
  targetId: string | null;
  targetLabel: string | null;
  detail: Record<string, unknown> | null;
  ip: string | null;
  requestId: string | null;
}

export const MAX_AUDIT_PAGE = 100;

/** The audit log's CSV header: the columns of the console's export (`…/audit.csv`), the management API's too. */
export const AUDIT_CSV_HEADER = csvRecord(['time', 'actor', 'actor_id', 'action', 'target_type', 'target_id', 'target', 'detail', 'ip', 'request_id']);

/** One record as a CSV line (RFC 4180, formula cells defused by `csvRecord`; decision 0029). */
export function auditCsvRecord(e: AuditEventView): string {
  return csvRecord([e.at.toISOString(), e.actorEmail, e.actorId, e.action, e.targetType, e.targetId, e.targetLabel, e.detail ? JSON.stringify(e.detail) : '', e.ip, e.requestId]);
}
/** Rows read per query while exporting: the export streams, its memory does not grow with the log. */
const EXPORT_BATCH = 500;

export function createAdminAudit(deps: { queries: OrganizationEventQueries; clock: Clock }) {
  const { queries, clock } = deps;

  const view = (row: OrganizationEventRow): AuditEventView => ({
    id: row.id,
    at: row.occurred_at,
    action: row.action,
    actorId: row.actor_id,
    actorEmail: row.actor_email,
    targetType: row.target_type,
    targetId: row.target_id,
    targetLabel: row.target_label,
    detail: row.detail,
    ip: row.ip,
    requestId: row.request_id,
  });

  return {
    /** Appends one record, in the transaction `tx` of the change it records. */
    async record(tx: Queryable, organizationId: string, entry: AuditEntry, meta: AuditMeta = {}): Promise<void> {
      await queries.insert(tx, {
        organizationId,
        occurredAt: new Date(clock.now()),
        actorId: entry.actorId,
        action: entry.action,
        targetType: entry.targetType,
        targetId: entry.targetId,
        targetLabel: entry.targetLabel,
        // Through the management API the client is part of "who": the admin, by way of that app.
        detail: meta.clientId ? { ...entry.detail, clientId: meta.clientId } : entry.detail,
        ip: meta.ip,
        requestId: meta.requestId,
      });
    },

    /** A page, newest first; `cursor` is the previous page's `next` (keyset paging on the id). */
    async page(organizationId: string, options: { limit?: number | undefined; cursor?: string | undefined } = {}): Promise<{ events: AuditEventView[]; next: string | undefined }> {
      const limit = Math.min(Math.max(options.limit ?? 25, 1), MAX_AUDIT_PAGE);
      const cursor = options.cursor && /^\d{1,18}$/.test(options.cursor) ? options.cursor : undefined;
      const rows = await queries.page(organizationId, limit + 1, cursor);
      const events = rows.slice(0, limit).map(view);
      return { events, next: rows.length > limit ? events.at(-1)?.id : undefined };
    },

    /** Every record, newest first, read in batches. */
    async *all(organizationId: string): AsyncGenerator<AuditEventView> {
      let cursor: string | undefined;
      for (;;) {
        const rows = await queries.page(organizationId, EXPORT_BATCH, cursor);
        for (const row of rows) yield view(row);
        if (rows.length < EXPORT_BATCH) return;
        cursor = rows.at(-1)!.id;
      }
    },
  };
}

export type AdminAudit = ReturnType<typeof createAdminAudit>;
