import type { Queryable } from '../db.ts';

export type OrganizationEventTarget = 'organization' | 'domain' | 'invitation' | 'account' | 'policy' | 'connector';

export interface OrganizationEventRow {
  id: string; // bigint arrives as a string
  organization_id: string;
  occurred_at: Date;
  actor_id: string | null;
  /** The actor's address now (an erased account shows its erased marker). */
  actor_email: string | null;
  action: string;
  target_type: OrganizationEventTarget | null;
  target_id: string | null;
  target_label: string | null;
  detail: Record<string, unknown> | null;
  ip: string | null;
  request_id: string | null;
}

export interface NewOrganizationEvent {
  organizationId: string;
  occurredAt: Date;
  actorId: string | null;
  action: string;
  targetType?: OrganizationEventTarget | undefined;
  targetId?: string | undefined;
  targetLabel?: string | undefined;
  detail?: Record<string, unknown> | undefined;
  ip?: string | null | undefined;
  requestId?: string | null | undefined;
}

const SELECT = `SELECT e.id, e.organization_id, e.occurred_at, e.actor_id, a.email AS actor_email, e.action, e.target_type, e.target_id,
  e.target_label, e.detail, e.ip, e.request_id FROM organization_events e LEFT JOIN accounts a ON a.id = e.actor_id`;

/** The audit trail of organization admins' actions (`organization_events`, migration 0017; append-only). */
export function createOrganizationEventQueries(db: Queryable) {
  return {
    async insert(tx: Queryable, event: NewOrganizationEvent): Promise<void> {
      await tx.query(
        `INSERT INTO organization_events (organization_id, occurred_at, actor_id, action, target_type, target_id, target_label, detail, ip, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [event.organizationId, event.occurredAt, event.actorId, event.action, event.targetType ?? null, event.targetId ?? null,
          event.targetLabel?.slice(0, 320) ?? null, event.detail ? JSON.stringify(event.detail) : null, event.ip ?? null, event.requestId ?? null],
      );
    },

    /** One page of an organization's events, newest first; `before` is the id of the last row of the previous page. */
    async page(organizationId: string, limit: number, before?: string): Promise<OrganizationEventRow[]> {
      const { rows } = await db.query<OrganizationEventRow>(
        `${SELECT} WHERE e.organization_id = $1 AND ($2::bigint IS NULL OR e.id < $2::bigint) ORDER BY e.id DESC LIMIT $3`,
        [organizationId, before ?? null, limit],
      );
      return rows;
    },
  };
}

export type OrganizationEventQueries = ReturnType<typeof createOrganizationEventQueries>;
