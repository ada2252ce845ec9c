import type { Queryable } from '../db.ts';

export type ConnectorKind = 'oidc' | 'saml';

export interface ConnectorRow {
  id: string;
  organization_id: string;
  kind: ConnectorKind;
  name: string;
  /** Non-secret settings, shape per kind (src/federation/connectors.ts). */
  config: Record<string, unknown>;
  sealed_secrets: string | null;
  enabled: boolean;
  created_at: Date;
  created_by: string;
  updated_at: Date;
  last_success_at: Date | null;
  last_failure_at: Date | null;
  last_failure: string | null;
}

/** A domain a connector answers for, with its state now (only verified ones count at login). */
export interface ConnectorDomainRow {
  connector_id: string;
  domain_id: string;
  domain: string;
  state: 'pending' | 'verified' | 'failing';
}

const COLUMNS = 'id, organization_id, kind, name, config, sealed_secrets, enabled, created_at, created_by, updated_at, last_success_at, last_failure_at, last_failure';

/** `last_failure` holds a short reason for the console, never an upstream's body. */
const MAX_FAILURE = 300;

/**
 * Company identity providers (`connectors`, `connector_domains`, migration 0020; decision 0033).
 * The login reads one connector by id with its domains; the console lists and changes them.
 */
export function createConnectorQueries(db: Queryable) {
  return {
    async insert(tx: Queryable, row: { id: string; organizationId: string; kind: ConnectorKind; name: string; config: object; sealedSecrets: string | null; createdBy: string; now: Date }): Promise<ConnectorRow> {
      const { rows } = await tx.query<ConnectorRow>(
        `INSERT INTO connectors (id, organization_id, kind, name, config, sealed_secrets, enabled, created_at, created_by, updated_at)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6, true, $7, $8, $7) RETURNING ${COLUMNS}`,
        [row.id, row.organizationId, row.kind, row.name, JSON.stringify(row.config), row.sealedSecrets, row.now, row.createdBy],
      );
      return rows[0]!;
    },

    async find(id: string, tx: Queryable = db): Promise<ConnectorRow | undefined> {
      const { rows } = await tx.query<ConnectorRow>(`SELECT ${COLUMNS} FROM connectors WHERE id = $1`, [id]);
      return rows[0];
    },

    async listForOrganization(organizationId: string): Promise<ConnectorRow[]> {
      const { rows } = await db.query<ConnectorRow>(`SELECT ${COLUMNS} FROM connectors WHERE organization_id = $1 ORDER BY created_at, id`, [organizationId]);
      return rows;
    },

    /** Name, settings and (when given) secrets; the row as it is now. */
    async update(tx: Queryable, id: string, change: { name: string; config: object; sealedSecrets?: string | null; enabled: boolean; now: Date }): Promise<ConnectorRow | undefined> {
      const { rows } = await tx.query<ConnectorRow>(
        `UPDATE connectors SET name = $2, config = $3::jsonb, enabled = $4, updated_at = $5,
           sealed_secrets = CASE WHEN $6::boolean THEN $7 ELSE sealed_secrets END
         WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, change.name, JSON.stringify(change.config), change.enabled, change.now, change.sealedSecrets !== undefined, change.sealedSecrets ?? null],
      );
      return rows[0];
    },

    async domainsOf(connectorIds: readonly string[], tx: Queryable = db): Promise<ConnectorDomainRow[]> {
      if (!connectorIds.length) return [];
      const { rows } = await tx.query<ConnectorDomainRow>(
        `SELECT cd.connector_id, d.id AS domain_id, d.domain, d.state FROM connector_domains cd
         JOIN organization_domains d ON d.id = cd.domain_id WHERE cd.connector_id = ANY($1::text[]) ORDER BY d.domain`,
        [connectorIds],
      );
      return rows;
    },

    /** Replaces the connector's domains with `domainIds` (the caller checked they are its organization's). */
    async setDomains(tx: Queryable, connectorId: string, domainIds: readonly string[]): Promise<void> {
      await tx.query('DELETE FROM connector_domains WHERE connector_id = $1 AND NOT (domain_id = ANY($2::text[]))', [connectorId, domainIds]);
      if (domainIds.length) {
        await tx.query(
          'INSERT INTO connector_domains (connector_id, domain_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING',
          [connectorId, domainIds],
        );
      }
    },

    /** The console's health line: a login or test that worked. */
    async recordSuccess(id: string, at: Date): Promise<void> {
      await db.query('UPDATE connectors SET last_success_at = $2 WHERE id = $1', [id, at]);
    },

    /** The console's health line: what went wrong, for the admin (short, no upstream content). */
    async recordFailure(id: string, at: Date, reason: string): Promise<void> {
      await db.query('UPDATE connectors SET last_failure_at = $2, last_failure = $3 WHERE id = $1', [id, at, reason.slice(0, MAX_FAILURE)]);
    },

    /** The policies that require this connector (a connector in use is not disabled silently). */
    async policiesUsing(id: string): Promise<{ id: string; name: string }[]> {
      const { rows } = await db.query<{ id: string; name: string }>('SELECT id, name FROM authentication_policies WHERE connector_id = $1 ORDER BY name', [id]);
      return rows;
    },
  };
}

export type ConnectorQueries = ReturnType<typeof createConnectorQueries>;
