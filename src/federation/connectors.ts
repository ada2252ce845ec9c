import { z } from 'zod';
import type { Clock } from '../shared/clock.ts';
import type { SecretBox } from '../shared/crypto.ts';
import { newId } from '../shared/ids.ts';
import type { Database } from '../persistence/db.ts';
import type { ConnectorKind, ConnectorQueries, ConnectorRow } from '../persistence/queries/connectors.ts';
import type { OrganizationDomainQueries } from '../persistence/queries/organization-domains.ts';
import { displayText } from '../shared/display-text.ts';
import type { AuditEntry, AuditMeta } from '../organizations/admin-audit.ts';
import { parseSamlConnectorConfig, type SamlConnectorConfig, type SamlConnectorSecrets } from './saml/config.ts';
import { generateSpKeys } from './saml/sp-keys.ts';
import { acceptableUpstreamUrl, type UpstreamRules } from './upstream-fetch.ts';

/**
 * An organization's company identity providers (issue 13, docs/flows/sso.md, decision 0033):
 * what a connector is, how its settings are validated and stored (settings as JSON, secrets
 * sealed with SECRET_KEY and bound to the connector's id), the login's view of one connector, and
 * the console's actions on them — authorized by the organization service and written to the
 * organization's audit trail in the same transaction.
 */

/** An OpenID Connect connector's settings (`connectors.config`, kind `oidc`). */
export interface OidcConnectorConfig {
  /** The upstream's issuer: discovery at `<issuer>/.well-known/openid-configuration`. */
  issuer: string;
  clientId: string;
  /** Space-separated, `openid` among them. */
  scopes: string;
  /** Claim mapping when the upstream names them otherwise (OIDC Core's `email`, `name` by default). */
  emailClaim?: string;
  nameClaim?: string;
}

export interface OidcConnectorSecrets {
  clientSecret: string;
}

export type ConnectorConfig = OidcConnectorConfig | SamlConnectorConfig;

/** One connector as the login uses it: enabled, secrets opened, with the verified domains it answers for. */
export type LoginConnector =
  | { id: string; organizationId: string; kind: 'oidc'; name: string; config: OidcConnectorConfig; secrets: OidcConnectorSecrets; domains: string[]; updatedAt: number }
  | { id: string; organizationId: string; kind: 'saml'; name: string; config: SamlConnectorConfig; secrets: SamlConnectorSecrets; domains: string[]; updatedAt: number };

/** What the console shows of a connector (no secret). */
export interface ConnectorView {
  id: string;
  kind: ConnectorKind;
  name: string;
  enabled: boolean;
  config: Record<string, unknown>;
  /** Whether a secret is stored (an OIDC client secret). */
  hasSecret: boolean;
  domains: { id: string; domain: string; state: string }[];
  createdAt: Date;
  updatedAt: Date;
  lastSuccessAt: Date | null;
  lastFailureAt: Date | null;
  lastFailure: string | null;
  /** The policies requiring it. */
  usedBy: { id: string; name: string }[];
  /** SAML: the SP certificates the IdP is given (PEM), newest last. */
  spCertificates?: string[];
}

/**
 * The issuer: https without query, fragment or credentials; plain http, loopback and private
 * addresses only under rules that allow them (tests, development — upstream-fetch.ts). Every
 * request is checked again when it connects: this refuses what is visibly wrong at registration.
 */
const upstreamUrl = (rules: UpstreamRules) => z.string().trim().max(2048).refine((value) => {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  return acceptableUpstreamUrl(url, rules) && !url.search && !url.hash && !url.username && !url.password;
}, rules.allowPrivateAddresses
  ? 'an https URL without query (http only for 127.0.0.1 or localhost, outside production)'
  : 'an https URL without query, on a public address (not private, loopback or link-local)');

const claimName = z.string().trim().max(200).regex(/^[A-Za-z0-9_.:/-]*$/).optional().transform((v) => (v ? v : undefined));

export const oidcConnectorConfigSchema = (rules: UpstreamRules) => z.object({
  issuer: upstreamUrl(rules).transform((v) => v.replace(/\/+$/, '')),
  clientId: z.string().trim().min(1).max(500),
  scopes: z.string().trim().max(500).transform((v) => v.split(/\s+/).filter(Boolean))
    .refine((list) => list.every((s) => /^[\x21\x23-\x5B\x5D-\x7E]+$/.test(s)), 'scopes are RFC 6749 scope tokens')
    .transform((list) => [...new Set(['openid', ...list])].join(' ')),
  emailClaim: claimName,
  nameClaim: claimName,
}).strict();

export function parseOidcConnectorConfig(input: unknown, rules: UpstreamRules): OidcConnectorConfig {
  const parsed = oidcConnectorConfigSchema(rules).parse(input);
  return {
    issuer: parsed.issuer,
    clientId: parsed.clientId,
    scopes: parsed.scopes,
    ...(parsed.emailClaim ? { emailClaim: parsed.emailClaim } : {}),
    ...(parsed.nameClaim ? { nameClaim: parsed.nameClaim } : {}),
  };
}

/** The console's names for the settings, so a refusal names the field the admin sees. */
const FIELD_LABELS: Record<string, string> = {
  issuer: 'Issuer URL', clientId: 'Client ID', scopes: 'Scopes', emailClaim: 'Email claim', nameClaim: 'Name claim',
  idpEntityId: 'Identity provider entity ID', ssoUrl: 'Single sign-on URL', idpCertificates: 'Signing certificate',
  idpInitiated: 'Sign-in started at the identity provider', emailAttribute: 'Email attribute', nameAttribute: 'Name attribute',
};

/**
 * One refusal in words an admin reads (walkthrough finding: "clientId: Too small: expected string
 * to have >=1 characters"): the field's label, then what to do. Our own refinements already say
 * what they want; the validator's generic messages are replaced.
 */
function fieldProblem(issue: z.core.$ZodIssue): string {
  const key = String(issue.path[0] ?? '');
  const label = FIELD_LABELS[key] ?? 'Settings';
  if (issue.code === 'too_small') return issue.origin === 'array' ? `${label}: add at least one` : `${label}: enter a value`;
  if (issue.code === 'too_big') return `${label}: too long`;
  if (issue.code === 'invalid_type') return `${label}: enter a value`;
  if (issue.code === 'unrecognized_keys') return 'Settings: unknown fields in the form';
  if (issue.code === 'custom') return `${label}: ${issue.message}`;
  return `${label}: check this value`;
}

const MAX_CLIENT_SECRET = 1000;

/** The context a connector's secrets are sealed under: a ciphertext moved to another row does not open. */
export const sealContext = (connectorId: string) => `connector:${connectorId}`;

export type ConnectorProblem =
  | 'organization.not_found'
  | 'organization.forbidden'
  | 'account.inactive'
  | 'connector.not_found'
  | 'connector.name_invalid'
  | 'connector.name_taken'
  | 'connector.config_invalid'
  | 'connector.secret_required'
  | 'connector.domain_invalid'
  | 'connector.in_use';

export type ConnectorResult<T> = ({ ok: true } & T) | { ok: false; problem: ConnectorProblem; detail?: string };

/** Input of the console's form: one shape for both kinds, checked per kind. */
export interface ConnectorInput {
  name: unknown;
  /** OIDC: issuer, clientId, scopes, emailClaim, nameClaim. SAML: idpEntityId, ssoUrl, idpCertificates, idpInitiated, emailAttribute, nameAttribute. */
  config: Record<string, unknown>;
  /** OIDC: a new client secret; empty keeps the stored one. */
  clientSecret?: string | undefined;
  enabled?: boolean;
}

export function createConnectors(deps: {
  db: Database;
  queries: ConnectorQueries;
  domains: Pick<OrganizationDomainQueries, 'listForOrganization'>;
  box: SecretBox;
  clock: Clock;
  authorize: (actorId: string, organizationId: string, needed: 'admin') => Promise<{ ok: true } | { ok: false; problem: 'organization.not_found' | 'organization.forbidden' | 'account.inactive' }>;
  audit: { record(tx: Parameters<ConnectorQueries['insert']>[0], organizationId: string, entry: AuditEntry, meta?: AuditMeta): Promise<void> };
  /** What an OIDC issuer may be (upstreamRulesOf(config)). */
  upstreams: UpstreamRules;
}) {
  const { db, queries, box } = deps;
  const now = () => new Date(deps.clock.now());

  function openSecrets(row: ConnectorRow): Record<string, unknown> {
    return row.sealed_secrets ? (JSON.parse(box.open(row.sealed_secrets, sealContext(row.id))) as Record<string, unknown>) : {};
  }
  const seal = (connectorId: string, secrets: object) => box.seal(JSON.stringify(secrets), sealContext(connectorId));

  function parseConfig(kind: ConnectorKind, config: Record<string, unknown>): { ok: true; config: ConnectorConfig } | { ok: false; detail: string } {
    try {
      return { ok: true, config: kind === 'oidc' ? parseOidcConnectorConfig(config, deps.upstreams) : parseSamlConnectorConfig(config) };
    } catch (err) {
      const issues = err instanceof z.ZodError ? err.issues.map(fieldProblem).join('; ') : 'invalid settings';
      return { ok: false, detail: issues.slice(0, 500) };
    }
  }

  async function view(row: ConnectorRow): Promise<ConnectorView> {
    const [domains, usedBy] = await Promise.all([queries.domainsOf([row.id]), queries.policiesUsing(row.id)]);
    const secrets = row.kind === 'saml' ? (openSecrets(row) as unknown as SamlConnectorSecrets) : undefined;
    return {
      id: row.id,
      kind: row.kind,
      name: row.name,
      enabled: row.enabled,
      config: row.config,
      hasSecret: row.kind === 'oidc' && Boolean(row.sealed_secrets),
      domains: domains.map((d) => ({ id: d.domain_id, domain: d.domain, state: d.state })),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      lastSuccessAt: row.last_success_at,
      lastFailureAt: row.last_failure_at,
      lastFailure: row.last_failure,
      usedBy,
      ...(secrets ? { spCertificates: secrets.spKeys.map((k) => k.certificatePem) } : {}),
    };
  }

  /** The organization's connector, when the actor is its admin. */
  async function owned(actorId: string, organizationId: string, connectorId: string): Promise<ConnectorResult<{ row: ConnectorRow }>> {
    const access = await deps.authorize(actorId, organizationId, 'admin');
    if (!access.ok) return access;
    const row = typeof connectorId === 'string' && connectorId.length <= 100 ? await queries.find(connectorId) : undefined;
    if (!row || row.organization_id !== organizationId) return { ok: false, problem: 'connector.not_found' };
    return { ok: true, row };
  }

  async function load(connectorId: string, includeDisabled: boolean): Promise<LoginConnector | undefined> {
    if (typeof connectorId !== 'string' || !/^con_[A-Za-z0-9_-]{1,64}$/.test(connectorId)) return undefined;
    const row = await queries.find(connectorId);
    if (!row || (!row.enabled && !includeDisabled)) return undefined;
    return loginView(row);
  }

  async function loginView(row: ConnectorRow): Promise<LoginConnector> {
    const domains = (await queries.domainsOf([row.id])).filter((d) => d.state === 'verified').map((d) => d.domain);
    const base = { id: row.id, organizationId: row.organization_id, name: row.name, domains, updatedAt: row.updated_at.getTime() };
    if (row.kind === 'oidc') return { ...base, kind: 'oidc', config: row.config as unknown as OidcConnectorConfig, secrets: openSecrets(row) as unknown as OidcConnectorSecrets };
    return { ...base, kind: 'saml', config: row.config as unknown as SamlConnectorConfig, secrets: openSecrets(row) as unknown as SamlConnectorSecrets };
  }

  const nameOf = (input: unknown) => displayText(input, 100);
  /** Another connector of the organization has this name (migration 0023's unique index). */
  const nameTaken = (err: unknown): undefined => {
    if ((err as { code?: string }).code === '23505') return undefined;
    throw err;
  };

  return {
    /**
     * The connector a login goes through: enabled, its secrets opened, and the domains it
     * answers for that its organization holds verified now. Undefined for an unknown id or a
     * disabled connector (the login page says the company's sign-in is unavailable).
     */
    async forLogin(connectorId: string): Promise<LoginConnector | undefined> {
      return load(connectorId, false);
    },

    /**
     * A connector whatever its state, for what comes back from an upstream after a console test
     * login (the admin's right to it was checked when the test started) and for a SAML
     * connector's metadata, which the IdP's admin needs before the connector is turned on.
     */
    async forAnyState(connectorId: string): Promise<LoginConnector | undefined> {
      return load(connectorId, true);
    },

    /** The health line: a login (or test) through the connector that worked, or why it did not. */
    async recordOutcome(connectorId: string, outcome: { ok: true } | { ok: false; reason: string }): Promise<void> {
      if (outcome.ok) await queries.recordSuccess(connectorId, now());
      else await queries.recordFailure(connectorId, now(), outcome.reason);
    },

    async list(actorId: string, organizationId: string): Promise<ConnectorResult<{ connectors: ConnectorView[] }>> {
      const access = await deps.authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      const rows = await queries.listForOrganization(organizationId);
      return { ok: true, connectors: await Promise.all(rows.map(view)) };
    },

    async get(actorId: string, organizationId: string, connectorId: string): Promise<ConnectorResult<{ connector: ConnectorView }>> {
      const found = await owned(actorId, organizationId, connectorId);
      if (!found.ok) return found;
      return { ok: true, connector: await view(found.row) };
    },

    /** The organization's domains an admin can link (verified or failing ones; pending ones cannot answer for anybody). */
    async linkableDomains(organizationId: string): Promise<{ id: string; domain: string; state: string }[]> {
      return (await deps.domains.listForOrganization(organizationId)).map((d) => ({ id: d.id, domain: d.domain, state: d.state }));
    },

    /**
     * Registers a connector. OIDC needs a client secret; SAML gets the service provider's own key
     * pair, generated here (its certificate goes in the SP metadata the IdP admin is given).
     */
    async create(actorId: string, organizationId: string, kind: ConnectorKind, input: ConnectorInput, meta: AuditMeta = {}): Promise<ConnectorResult<{ connector: ConnectorView }>> {
      const access = await deps.authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      const name = nameOf(input.name);
      if (!name.ok) return { ok: false, problem: 'connector.name_invalid' };
      const parsed = parseConfig(kind, input.config);
      if (!parsed.ok) return { ok: false, problem: 'connector.config_invalid', detail: parsed.detail };
      const secret = input.clientSecret?.trim();
      if (kind === 'oidc' && (!secret || secret.length > MAX_CLIENT_SECRET)) return { ok: false, problem: 'connector.secret_required' };
      const id = newId('con');
      const at = now();
      const secrets = kind === 'oidc' ? { clientSecret: secret! } : { spKeys: [generateSpKeys(at)] };
      const row = await db.transaction(async (tx) => {
        const inserted = await queries.insert(tx, { id, organizationId, kind, name: name.value, config: parsed.config, sealedSecrets: seal(id, secrets), createdBy: actorId, now: at });
        await deps.audit.record(tx, organizationId, { action: 'connector.created', actorId, targetType: 'connector', targetId: id, targetLabel: name.value, detail: { kind } }, meta);
        return inserted;
      }).catch(nameTaken);
      if (!row) return { ok: false, problem: 'connector.name_taken' };
      return { ok: true, connector: await view(row) };
    },

    /** Changes a connector's name, settings, secret (OIDC, when a new one is given) and whether it is enabled. */
    async update(actorId: string, organizationId: string, connectorId: string, input: ConnectorInput, meta: AuditMeta = {}): Promise<ConnectorResult<{ connector: ConnectorView }>> {
      const found = await owned(actorId, organizationId, connectorId);
      if (!found.ok) return found;
      const { row } = found;
      const name = nameOf(input.name);
      if (!name.ok) return { ok: false, problem: 'connector.name_invalid' };
      const parsed = parseConfig(row.kind, input.config);
      if (!parsed.ok) return { ok: false, problem: 'connector.config_invalid', detail: parsed.detail };
      const secret = input.clientSecret?.trim();
      if (secret && secret.length > MAX_CLIENT_SECRET) return { ok: false, problem: 'connector.secret_required' };
      const enabled = input.enabled ?? row.enabled;
      // Turning off a connector a policy requires would lock its people out without a word: the
      // admin changes the policy first.
      if (!enabled && row.enabled && (await queries.policiesUsing(row.id)).length) return { ok: false, problem: 'connector.in_use' };
      const updated = await db.transaction(async (tx) => {
        const changed = await queries.update(tx, row.id, {
          name: name.value,
          config: parsed.config,
          enabled,
          now: now(),
          ...(row.kind === 'oidc' && secret ? { sealedSecrets: seal(row.id, { clientSecret: secret }) } : {}),
        });
        await deps.audit.record(tx, organizationId, {
          action: 'connector.updated',
          actorId,
          targetType: 'connector',
          targetId: row.id,
          targetLabel: name.value,
          detail: { ...(secret ? { secret: 'replaced' } : {}), ...(enabled !== row.enabled ? { enabled } : {}) },
        }, meta);
        return changed!;
      }).catch(nameTaken);
      if (!updated) return { ok: false, problem: 'connector.name_taken' };
      return { ok: true, connector: await view(updated) };
    },

    /** Sets the domains a connector answers for: the organization's own, verified (or failing) ones. */
    async setDomains(actorId: string, organizationId: string, connectorId: string, domainIds: readonly string[], meta: AuditMeta = {}): Promise<ConnectorResult<{ connector: ConnectorView }>> {
      const found = await owned(actorId, organizationId, connectorId);
      if (!found.ok) return found;
      const held = new Map((await deps.domains.listForOrganization(organizationId)).filter((d) => d.state !== 'pending').map((d) => [d.id, d.domain]));
      const wanted = [...new Set(domainIds)];
      if (wanted.some((id) => !held.has(id))) return { ok: false, problem: 'connector.domain_invalid' };
      await db.transaction(async (tx) => {
        await queries.setDomains(tx, found.row.id, wanted);
        await deps.audit.record(tx, organizationId, { action: 'connector.domains_changed', actorId, targetType: 'connector', targetId: found.row.id, targetLabel: found.row.name, detail: { domains: wanted.map((id) => held.get(id)).join(' ') } }, meta);
      });
      return { ok: true, connector: await view((await queries.find(found.row.id))!) };
    },

    /** The connector for a test login: the admin's own organization's, enabled or not. */
    async forTest(actorId: string, organizationId: string, connectorId: string): Promise<ConnectorResult<{ connector: LoginConnector }>> {
      const found = await owned(actorId, organizationId, connectorId);
      if (!found.ok) return found;
      const connector = await loginView(found.row);
      return { ok: true, connector };
    },
  };
}

export type Connectors = ReturnType<typeof createConnectors>;
