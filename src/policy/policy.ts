import type { Clock } from '../shared/clock.ts';
import type { Queryable } from '../persistence/db.ts';
import type { AccountQueries, AccountRow } from '../persistence/queries/accounts.ts';
import { emailDomainOf } from '../persistence/queries/accounts.ts';
import type { OrganizationDomainQueries } from '../persistence/queries/organization-domains.ts';
import { decide, type AccountSubject, type Decision, type DecisionInput, type Manager, type ManagerRules, type Subject } from './decision.ts';

export * from './decision.ts';
export * from './levels.ts';

/**
 * The decision point's loader: turns an account row (or an address) into the decision's subject,
 * with one statement when the caller has nothing yet (`findWithPolicy` / `findByEmail` carry the
 * two-step, Trello-link and management columns — managers from `account_managers`) and none when it already holds such a row.
 */
export function subjectOf(account: AccountRow, now: number): AccountSubject {
  // From `account_managers` (decision 0030), with the rules of the organization's policy the
  // account follows (decision 0033).
  const managers: Manager[] = (account.managers ?? []).map(([kind, id, name, rules]) => managerOf(kind, id, name, rules));
  return {
    kind: 'account',
    id: account.id,
    status: account.status,
    reopenable: account.status === 'closed' && !account.erased_at && (account.delete_after?.getTime() ?? 0) > now,
    hasPassword: Boolean(account.password_hash),
    twoStepEnabled: Boolean(account.two_step_enabled),
    twoStepRequired: account.two_step_required,
    managers,
    trelloLinked: Boolean(account.trello_linked),
    // A password set before its time was recorded counts from the account's creation.
    ...(account.password_hash ? { passwordChangedAt: Math.floor((account.password_changed_at ?? account.created_at).getTime() / 1000) } : {}),
  };
}

/** Stored policy rules (`policyRulesOf` in the account queries) as the decision point reads them. */
interface StoredRules {
  policy: string;
  connector: string | null;
  twoStep: boolean;
  minLength: number | null;
  maxAgeDays: number | null;
  idle: number | null;
  maxSession: number | null;
  reauthAfter: number | null;
}

export function rulesFrom(json: string | null | undefined): ManagerRules | undefined {
  if (!json) return undefined;
  const stored = JSON.parse(json) as StoredRules;
  const rules: ManagerRules = { policy: stored.policy };
  if (stored.connector) rules.connector = stored.connector;
  if (stored.twoStep) rules.twoStepRequired = true;
  if (stored.minLength) rules.passwordMinLength = stored.minLength;
  if (stored.maxAgeDays) rules.passwordMaxAgeDays = stored.maxAgeDays;
  if (stored.idle) rules.idleTimeoutSeconds = stored.idle;
  if (stored.maxSession) rules.maxSessionSeconds = stored.maxSession;
  if (stored.reauthAfter) rules.reauthenticateAfter = Number(stored.reauthAfter);
  return rules;
}

function managerOf(kind: Manager['kind'], id: string, name: string, rules: string | null | undefined): Manager {
  const parsed = rulesFrom(rules);
  return parsed ? { kind, id, name, rules: parsed } : { kind, id, name };
}

/** Whether a row came from a query that carries the policy columns. */
const hasPolicyColumns = (account: AccountRow) => account.two_step_enabled !== undefined && account.trello_linked !== undefined;

export function createPolicy(deps: { accounts: AccountQueries; domains: Pick<OrganizationDomainQueries, 'managerOfAddress'>; clock: Clock }) {
  const { accounts, clock } = deps;
  const nowSeconds = () => Math.floor(clock.now() / 1000);

  /** An account with its subject, in one statement (inside `tx` when given); undefined when there is no such account. */
  async function load(accountId: string, tx?: Queryable): Promise<{ account: AccountRow; subject: AccountSubject } | undefined> {
    const account = await accounts.findWithPolicy(accountId, tx);
    return account ? { account, subject: subjectOf(account, clock.now()) } : undefined;
  }

  /** An address without its account: the organization holding its domain, with its default rules. */
  async function addressSubject(email: string): Promise<Subject> {
    const held = await deps.domains.managerOfAddress(email, emailDomainOf(email));
    return held ? { kind: 'address', email, managers: [managerOf('organization', held.organization_id, held.name, held.rules)] } : { kind: 'address', email };
  }

  function discovered(email: string, held: { organization_id: string; name: string; rules: string | null } | undefined, account: AccountRow | undefined): Subject {
    if (!held) return { kind: 'address', email };
    if (account && hasPolicyColumns(account)) return subjectOf(account, clock.now());
    return { kind: 'address', email, managers: [managerOf('organization', held.organization_id, held.name, held.rules)] };
  }

  return {
    /** Decides at the current time (seconds). */
    decide(input: Omit<DecisionInput, 'now'>): Decision {
      return decide({ ...input, now: nowSeconds() });
    },

    /** The subject for a row: no query when the row already carries the policy columns. */
    async subject(account: AccountRow): Promise<AccountSubject> {
      const full = hasPolicyColumns(account) ? account : ((await accounts.findWithPolicy(account.id)) ?? account);
      return subjectOf(full, clock.now());
    },

    load,

    /**
     * An account and its subject for the token stages (refresh, userinfo, api, session), in one
     * lighter statement (`findForTokens`): those stages read the status, what is required and
     * the managers, never whether two-step is on or a Trello member linked, which this subject
     * leaves false (test/unit/policy/decision.test.ts proves the token stages ignore them).
     */
    async loadForTokens(accountId: string): Promise<{ account: AccountRow; subject: AccountSubject } | undefined> {
      const account = await accounts.findForTokens(accountId);
      return account ? { account, subject: subjectOf(account, clock.now()) } : undefined;
    },

    /**
     * The subject for an address: its account's, or the address with the organization that holds
     * its domain (and that organization's default policy) when there is no account.
     */
    async subjectForEmail(email: string): Promise<{ account: AccountRow | undefined; subject: Subject }> {
      const account = await accounts.findByEmail(email);
      if (account) return { account, subject: subjectOf(account, clock.now()) };
      return { account: undefined, subject: await addressSubject(email) };
    },

    addressSubject,

    /**
     * The identifier step's subject (home-realm discovery, decision 0033). An address on a domain
     * no organization holds is answered as a bare address — one indexed lookup of the domain,
     * none of the account, so nothing tells whether it has one. On a held domain the account's
     * own policy decides (an organization may put some of its people under SSO and others not),
     * and an address without an account follows the default policy. What this reveals stays
     * within the organization's own domain.
     */
    async discover(email: string): Promise<Subject> {
      const held = await deps.domains.managerOfAddress(email, emailDomainOf(email));
      if (!held) return { kind: 'address', email };
      if (held.account_id) {
        const loaded = await load(held.account_id);
        if (loaded) return loaded.subject;
      }
      return discovered(email, held, undefined);
    },

    /**
     * `discover`'s answer from rows the caller already read (the password step reads the domain's
     * holder and the account, with the decision point's columns, in its one statement).
     */
    discovered,
  };
}

export type Policy = ReturnType<typeof createPolicy>;
