import type { Database, Queryable } from '../persistence/db.ts';
import type { AccountManagerQueries } from '../persistence/queries/account-managers.ts';
import type { AuthenticationPolicyQueries, AuthenticationPolicyRow, ConnectorChoice, PolicySettings } from '../persistence/queries/authentication-policies.ts';
import type { Clock } from '../shared/clock.ts';
import { displayText } from '../shared/display-text.ts';
import { newId } from '../shared/ids.ts';
import type { RequestMeta } from '../identity/security-events.ts';
import type { AdminAudit, OrganizationAction } from './admin-audit.ts';
import type { AccessProblem, OrganizationService } from './organizations.ts';

/**
 * An organization's authentication policies (issue 13, docs/flows/organizations.md
 * "Authentication policies", decision 0038): the rules its managed accounts sign in under — the
 * login method (email and password, or SSO through one of its connectors), two-step verification
 * required, the password's minimum length and maximum age, an idle timeout and a maximum session
 * lifetime — and which account follows which policy.
 *
 * What the rules do is the decision point's (src/policy/decision.ts), which reads them live with
 * every login and token use: a change here takes effect at each account's next login, token
 * refresh or page. This service only keeps them, under these invariants:
 * - while an organization has policies, exactly one is its default (the first one made is; the
 *   default can be moved, and cannot be deleted while another policy exists);
 * - an SSO policy names an enabled connector of the same organization that has worked at least
 *   once (a login or a test), so nobody is sent to a company sign-in that was never seen working;
 * - only accounts the organization manages are assigned, one policy each.
 *
 * Authorization as in organizations.ts: the actor must be an admin (`organization.not_found` /
 * `organization.forbidden` otherwise); a policy or account of another organization is
 * `auth_policy.not_found` / `account.not_found`, like one that does not exist. Every change is in
 * the organization's audit trail, in its transaction.
 */

/** Policies per organization: enough for departments and exceptions; the list stays one page. */
export const MAX_POLICIES = 50;
/** Accounts one assignment takes (the console's bulk limit). */
export const MAX_ASSIGN = 100;
/** Sign-outs run side by side when everyone under a policy is signed out. */
const SIGN_OUT_CONCURRENCY = 4;

/** The bounds of each setting (the table's CHECK constraints, migration 0020). */
export const LIMITS = {
  passwordMinLength: { min: 8, max: 128 },
  passwordMaxAgeDays: { min: 1, max: 3650 },
  idleTimeoutSeconds: { min: 300, max: 31_536_000 },
  maxSessionSeconds: { min: 300, max: 31_536_000 },
} as const;

export type PolicyProblem =
  | 'auth_policy.not_found'
  | 'auth_policy.name_invalid'
  | 'auth_policy.name_taken'
  | 'auth_policy.login_method'
  | 'auth_policy.connector_required'
  | 'auth_policy.connector_not_found'
  | 'auth_policy.connector_disabled'
  | 'auth_policy.connector_untested'
  | 'auth_policy.min_length'
  | 'auth_policy.max_age'
  | 'auth_policy.idle_timeout'
  | 'auth_policy.max_session'
  | 'auth_policy.limit'
  | 'auth_policy.default_in_use';

/** A policy's settings as an admin sent them (forms: text; the API: JSON). Blank numbers mean "no limit". */
export interface PolicyInput {
  name?: unknown;
  loginMethod?: unknown;
  connectorId?: unknown;
  twoStepRequired?: unknown;
  passwordMinLength?: unknown;
  passwordMaxAgeDays?: unknown;
  idleTimeoutSeconds?: unknown;
  maxSessionSeconds?: unknown;
}

export interface PolicyView {
  id: string;
  name: string;
  isDefault: boolean;
  loginMethod: 'password' | 'sso';
  connectorId: string | null;
  twoStepRequired: boolean;
  passwordMinLength: number | null;
  passwordMaxAgeDays: number | null;
  idleTimeoutSeconds: number | null;
  maxSessionSeconds: number | null;
  /** The last "sign everyone out". */
  reauthenticateAfter: Date | null;
  /** Accounts assigned to it (the default's followers besides are not counted here). */
  assigned: number;
  createdAt: Date;
  updatedAt: Date;
}

const view = (row: AuthenticationPolicyRow): PolicyView => ({
  id: row.id,
  name: row.name,
  isDefault: row.is_default,
  loginMethod: row.login_method,
  connectorId: row.connector_id,
  twoStepRequired: row.two_step_required,
  passwordMinLength: row.password_min_length,
  passwordMaxAgeDays: row.password_max_age_days,
  idleTimeoutSeconds: row.idle_timeout_seconds,
  maxSessionSeconds: row.max_session_seconds,
  reauthenticateAfter: row.reauthenticate_after,
  assigned: row.assigned ?? 0,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

/** A whole number in [min, max], or null for blank; undefined when it is neither. */
function bounded(value: unknown, limits: { min: number; max: number }): number | null | undefined {
  if (value === undefined || value === null || value === '') return null;
  const number = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d{1,12}\s*$/.test(value) ? Number(value) : NaN;
  return Number.isInteger(number) && number >= limits.min && number <= limits.max ? number : undefined;
}

const truthy = (value: unknown) => value === true || value === 'true' || value === 'on' || value === '1';

export function createAuthenticationPolicies(deps: {
  db: Database;
  queries: AuthenticationPolicyQueries;
  managers: Pick<AccountManagerQueries, 'managedBy'>;
  /** Whether the account is an admin of the organization (read in the assignment's transaction). */
  isAdmin: (tx: Queryable, organizationId: string, accountId: string) => Promise<boolean>;
  authorize: OrganizationService['authorize'];
  audit: AdminAudit;
  clock: Clock;
  /** Ends every session of the account, revokes its grants and tokens, sends back-channel logouts. */
  signOutEverywhere: (accountId: string) => Promise<unknown>;
}) {
  const { db, queries, clock } = deps;
  const now = () => new Date(clock.now());

  async function audit(tx: Queryable, organizationId: string, actorId: string, action: OrganizationAction, target: { type: 'policy' | 'account'; id: string; label: string }, detail: Record<string, unknown> | undefined, meta: RequestMeta) {
    await deps.audit.record(tx, organizationId, { action, actorId, targetType: target.type, targetId: target.id, targetLabel: target.label.slice(0, 320), detail }, meta);
  }

  /** The settings, checked; or the first thing wrong with them, in the form's order. */
  async function settingsFrom(organizationId: string, input: PolicyInput, tx: Queryable): Promise<{ ok: true; settings: PolicySettings } | { ok: false; problem: PolicyProblem }> {
    const name = displayText(input.name, 100);
    if (!name.ok) return { ok: false, problem: 'auth_policy.name_invalid' };
    const loginMethod = input.loginMethod ?? 'password';
    if (loginMethod !== 'password' && loginMethod !== 'sso') return { ok: false, problem: 'auth_policy.login_method' };
    let connectorId: string | null = null;
    if (loginMethod === 'sso') {
      if (typeof input.connectorId !== 'string' || !input.connectorId) return { ok: false, problem: 'auth_policy.connector_required' };
      const { rows } = await tx.query<{ enabled: boolean; last_success_at: Date | null }>('SELECT enabled, last_success_at FROM connectors WHERE id = $1 AND organization_id = $2', [input.connectorId.slice(0, 100), organizationId]);
      const connector = rows[0];
      if (!connector) return { ok: false, problem: 'auth_policy.connector_not_found' };
      if (!connector.enabled) return { ok: false, problem: 'auth_policy.connector_disabled' };
      if (!connector.last_success_at) return { ok: false, problem: 'auth_policy.connector_untested' };
      connectorId = input.connectorId;
    }
    const passwordMinLength = bounded(input.passwordMinLength, LIMITS.passwordMinLength);
    if (passwordMinLength === undefined) return { ok: false, problem: 'auth_policy.min_length' };
    const passwordMaxAgeDays = bounded(input.passwordMaxAgeDays, LIMITS.passwordMaxAgeDays);
    if (passwordMaxAgeDays === undefined) return { ok: false, problem: 'auth_policy.max_age' };
    const idleTimeoutSeconds = bounded(input.idleTimeoutSeconds, LIMITS.idleTimeoutSeconds);
    if (idleTimeoutSeconds === undefined) return { ok: false, problem: 'auth_policy.idle_timeout' };
    const maxSessionSeconds = bounded(input.maxSessionSeconds, LIMITS.maxSessionSeconds);
    if (maxSessionSeconds === undefined) return { ok: false, problem: 'auth_policy.max_session' };
    // Password rules mean nothing under SSO (no password is used): they are not kept, so a later
    // switch back to passwords starts from what the admin sets then.
    const sso = loginMethod === 'sso';
    return {
      ok: true,
      settings: {
        name: name.value,
        loginMethod,
        connectorId,
        twoStepRequired: truthy(input.twoStepRequired),
        passwordMinLength: sso ? null : passwordMinLength,
        passwordMaxAgeDays: sso ? null : passwordMaxAgeDays,
        idleTimeoutSeconds,
        maxSessionSeconds,
      },
    };
  }

  /** What changed, for the audit trail: each setting's old and new value. */
  function changes(before: AuthenticationPolicyRow, after: AuthenticationPolicyRow): Record<string, unknown> {
    const fields = ['name', 'login_method', 'connector_id', 'two_step_required', 'password_min_length', 'password_max_age_days', 'idle_timeout_seconds', 'max_session_seconds'] as const;
    const changed: Record<string, unknown> = {};
    for (const field of fields) if (before[field] !== after[field]) changed[field] = { from: before[field], to: after[field] };
    return changed;
  }

  const uniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

  /** Names tell policies apart on the console: "Staff" and "staff" would not (the table's own check is exact). */
  async function nameTaken(tx: Queryable, organizationId: string, name: string, exceptId = ''): Promise<boolean> {
    const { rows } = await tx.query('SELECT 1 FROM authentication_policies WHERE organization_id = $1 AND lower(name) = lower($2) AND id <> $3', [organizationId, name, exceptId]);
    return rows.length > 0;
  }

  /** An admin's change to one policy of the organization, in a transaction with the policy locked. */
  async function onPolicy<T>(actorId: string, organizationId: string, policyId: unknown, act: (tx: Queryable, policy: AuthenticationPolicyRow) => Promise<T>): Promise<T | { ok: false; problem: AccessProblem | 'auth_policy.not_found' }> {
    const access = await deps.authorize(actorId, organizationId, 'admin');
    if (!access.ok) return access;
    if (typeof policyId !== 'string' || policyId.length > 100) return { ok: false, problem: 'auth_policy.not_found' };
    return db.transaction(async (tx) => {
      // The organization's row before the policy's, the order of its deletion (which deletes the
      // policies): the two wait for each other instead of deadlocking.
      const live = await tx.query('SELECT 1 FROM organizations WHERE id = $1 AND deleted_at IS NULL FOR UPDATE', [organizationId]);
      if (live.rows.length === 0) return { ok: false as const, problem: 'auth_policy.not_found' as const };
      const policy = await queries.find(organizationId, policyId, tx, true);
      if (!policy) return { ok: false as const, problem: 'auth_policy.not_found' as const };
      return act(tx, policy);
    });
  }

  return {
    LIMITS,

    /** The organization's policies (default first) and the connectors an SSO policy may name. */
    async list(actorId: string, organizationId: string): Promise<{ ok: true; policies: PolicyView[]; connectors: ConnectorChoice[] } | { ok: false; problem: AccessProblem }> {
      const access = await deps.authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      const [policies, connectors] = await Promise.all([queries.list(organizationId), queries.connectors(organizationId)]);
      return { ok: true, policies: policies.map(view), connectors };
    },

    async get(actorId: string, organizationId: string, policyId: unknown): Promise<{ ok: true; policy: PolicyView; followers: number } | { ok: false; problem: AccessProblem | 'auth_policy.not_found' }> {
      const access = await deps.authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      if (typeof policyId !== 'string' || policyId.length > 100) return { ok: false, problem: 'auth_policy.not_found' };
      const row = await queries.find(organizationId, policyId);
      if (!row) return { ok: false, problem: 'auth_policy.not_found' };
      return { ok: true, policy: view(row), followers: (await queries.accountsUnder(organizationId, row)).length };
    },

    /** The policy an account the organization manages follows: its own, or the default (undefined: none). */
    async policyOf(actorId: string, organizationId: string, accountId: unknown): Promise<{ ok: true; policyId: string | undefined; assigned: boolean } | { ok: false; problem: AccessProblem | 'account.not_found' }> {
      const access = await deps.authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      if (typeof accountId !== 'string' || accountId.length > 100 || !(await deps.managers.managedBy(organizationId, accountId))) return { ok: false, problem: 'account.not_found' };
      const assigned = await queries.assignedPolicy(organizationId, accountId);
      if (assigned) return { ok: true, policyId: assigned, assigned: true };
      return { ok: true, policyId: (await queries.list(organizationId)).find((p) => p.is_default)?.id, assigned: false };
    },

    /** A new policy; the organization's first becomes its default. */
    async create(actorId: string, organizationId: string, input: PolicyInput, meta: RequestMeta = {}): Promise<{ ok: true; policy: PolicyView } | { ok: false; problem: AccessProblem | PolicyProblem }> {
      const access = await deps.authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      try {
        return await db.transaction(async (tx) => {
          // The organization's row serialises policy creation (the first one is the default);
          // an organization deleted since the check above is not found (migration 0029).
          const live = await tx.query('SELECT 1 FROM organizations WHERE id = $1 AND deleted_at IS NULL FOR UPDATE', [organizationId]);
          if (live.rows.length === 0) return { ok: false as const, problem: 'organization.not_found' as const };
          const count = await queries.count(tx, organizationId);
          if (count >= MAX_POLICIES) return { ok: false as const, problem: 'auth_policy.limit' as const };
          const checked = await settingsFrom(organizationId, input, tx);
          if (!checked.ok) return checked;
          if (await nameTaken(tx, organizationId, checked.settings.name)) return { ok: false as const, problem: 'auth_policy.name_taken' as const };
          const row = await queries.insert(tx, { id: newId('pol'), organizationId, isDefault: count === 0, now: now(), ...checked.settings });
          await audit(tx, organizationId, actorId, 'policy.created', { type: 'policy', id: row.id, label: row.name }, { ...checked.settings, isDefault: row.is_default }, meta);
          return { ok: true as const, policy: view(row) };
        });
      } catch (err) {
        if (uniqueViolation(err)) return { ok: false, problem: 'auth_policy.name_taken' };
        throw err;
      }
    },

    /** New settings; they apply from each account's next login, refresh or page (the decision point reads them live). */
    async update(actorId: string, organizationId: string, policyId: unknown, input: PolicyInput, meta: RequestMeta = {}): Promise<{ ok: true; policy: PolicyView } | { ok: false; problem: AccessProblem | PolicyProblem }> {
      try {
        return await onPolicy(actorId, organizationId, policyId, async (tx, before) => {
          const checked = await settingsFrom(organizationId, input, tx);
          if (!checked.ok) return checked;
          if (await nameTaken(tx, organizationId, checked.settings.name, before.id)) return { ok: false as const, problem: 'auth_policy.name_taken' as const };
          const row = await queries.update(tx, before.id, checked.settings, now());
          const changed = changes(before, row);
          if (Object.keys(changed).length) await audit(tx, organizationId, actorId, 'policy.updated', { type: 'policy', id: row.id, label: row.name }, changed, meta);
          return { ok: true as const, policy: view(row) };
        });
      } catch (err) {
        if (uniqueViolation(err)) return { ok: false, problem: 'auth_policy.name_taken' };
        throw err;
      }
    },

    /** Makes the policy the organization's default: every account assigned to no policy follows it. */
    async makeDefault(actorId: string, organizationId: string, policyId: unknown, meta: RequestMeta = {}): Promise<{ ok: true; policy: PolicyView } | { ok: false; problem: AccessProblem | 'auth_policy.not_found' }> {
      return onPolicy(actorId, organizationId, policyId, async (tx, policy) => {
        if (!policy.is_default) {
          await tx.query('SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE', [organizationId]);
          const previous = (await queries.list(organizationId, tx)).find((p) => p.is_default);
          await queries.makeDefault(tx, organizationId, policy.id, now());
          await audit(tx, organizationId, actorId, 'policy.default_set', { type: 'policy', id: policy.id, label: policy.name }, previous ? { previous: previous.name } : undefined, meta);
        }
        return { ok: true as const, policy: view({ ...policy, is_default: true }) };
      });
    },

    /**
     * Deletes a policy: the accounts assigned to it follow the default from their next login or
     * refresh. The default cannot go while another policy exists (make another the default
     * first); the last policy can, and the organization then sets no rules.
     */
    async remove(actorId: string, organizationId: string, policyId: unknown, meta: RequestMeta = {}): Promise<{ ok: true; name: string } | { ok: false; problem: AccessProblem | 'auth_policy.not_found' | 'auth_policy.default_in_use' }> {
      return onPolicy(actorId, organizationId, policyId, async (tx, policy) => {
        if (policy.is_default && (await queries.count(tx, organizationId)) > 1) return { ok: false as const, problem: 'auth_policy.default_in_use' as const };
        const assigned = (await queries.accountsUnder(organizationId, { id: policy.id, is_default: false }, tx)).length;
        await queries.remove(tx, policy.id);
        await audit(tx, organizationId, actorId, 'policy.deleted', { type: 'policy', id: policy.id, label: policy.name }, { assigned, wasDefault: policy.is_default }, meta);
        return { ok: true as const, name: policy.name };
      });
    },

    /**
     * Assigns accounts the organization manages to the policy, or back to the default
     * (`policyId` null). Each account is its own change, with its own audit record; one that the
     * organization does not manage (or not any more) is left out and counted — and so is another
     * admin of the organization: a policy decides how its accounts sign in (a company sign-in
     * only, a password no longer taken), and one admin cannot lock another out or put them
     * under an identity provider of their choosing, as they cannot deactivate or move them
     * (`account.admin`, src/organizations/managed-accounts.ts). An admin assigns themself; the
     * default policy covers every admin without assignment.
     */
    async assign(actorId: string, organizationId: string, accountIds: unknown, policyId: unknown, meta: RequestMeta = {}): Promise<{ ok: true; assigned: number; skipped: number; policy: string } | { ok: false; problem: AccessProblem | 'auth_policy.not_found' | 'list.invalid' }> {
      const access = await deps.authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      if (!Array.isArray(accountIds) || accountIds.length > MAX_ASSIGN) return { ok: false, problem: 'list.invalid' };
      const ids = [...new Set(accountIds.filter((id): id is string => typeof id === 'string' && id.length > 0 && id.length <= 100))];
      let target: AuthenticationPolicyRow | undefined;
      if (policyId !== null) {
        if (typeof policyId !== 'string' || policyId.length > 100) return { ok: false, problem: 'auth_policy.not_found' };
        target = await queries.find(organizationId, policyId);
        if (!target) return { ok: false, problem: 'auth_policy.not_found' };
      }
      let assigned = 0;
      for (const accountId of ids) {
        const done = await db.transaction(async (tx) => {
          const account = await deps.managers.managedBy(organizationId, accountId, tx, true);
          if (!account) return false;
          if (accountId !== actorId && (await deps.isAdmin(tx, organizationId, accountId))) return false;
          // Read again under the lock: a policy deleted meanwhile assigns nobody.
          if (target && !(await queries.find(organizationId, target.id, tx, true))) return false;
          const before = await queries.assignedPolicy(organizationId, accountId, tx);
          if (target) await queries.assign(tx, accountId, target.id, now());
          else await queries.unassign(tx, accountId);
          if (before !== target?.id) {
            await audit(tx, organizationId, actorId, 'account.policy_assigned', { type: 'account', id: accountId, label: account.email }, { policyId: target?.id ?? null, policy: target?.name ?? 'the default policy', previousPolicyId: before ?? null }, meta);
          }
          return true;
        });
        if (done) assigned += 1;
      }
      return { ok: true, assigned, skipped: ids.length - assigned, policy: target?.name ?? 'the default policy' };
    },

    /**
     * "Sign everyone out under this policy": logins made before now no longer count for any
     * account following it (`reauthenticate_after`, read by the decision point at every token use,
     * page and /auth), and every browser session, grant and token of those accounts ends now, with
     * a back-channel logout to each relying party — as when an account is deactivated. Each
     * person signs in again at their next visit, under the policy as it is then.
     */
    async signOutEveryone(actorId: string, organizationId: string, policyId: unknown, meta: RequestMeta = {}): Promise<{ ok: true; accounts: number; policy: PolicyView } | { ok: false; problem: AccessProblem | 'auth_policy.not_found' }> {
      const result = await onPolicy(actorId, organizationId, policyId, async (tx, policy) => {
        const at = now();
        await queries.reauthenticateAfter(tx, policy.id, at);
        const accounts = await queries.accountsUnder(organizationId, policy, tx);
        await audit(tx, organizationId, actorId, 'policy.signed_out', { type: 'policy', id: policy.id, label: policy.name }, { accounts: accounts.length }, meta);
        return { ok: true as const, accounts, policy: view({ ...policy, reauthenticate_after: at }) };
      });
      if (!result.ok) return result;
      // After the commit: the rule already holds everywhere; this ends what the rule would
      // refuse at its next use, and tells the relying parties now.
      const queue = [...result.accounts];
      await Promise.all(Array.from({ length: Math.min(SIGN_OUT_CONCURRENCY, queue.length) }, async () => {
        for (let id = queue.shift(); id; id = queue.shift()) await deps.signOutEverywhere(id);
      }));
      return { ok: true, accounts: result.accounts.length, policy: result.policy };
    },
  };
}

export type AuthenticationPolicies = ReturnType<typeof createAuthenticationPolicies>;
