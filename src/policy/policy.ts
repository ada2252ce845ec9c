import type { Clock } from '../shared/clock.ts';
import type { Queryable } from '../persistence/db.ts';
import type { AccountQueries, AccountRow } from '../persistence/queries/accounts.ts';
import { decide, type AccountSubject, type Decision, type DecisionInput, type Manager, type Subject } from './decision.ts';

export * from './decision.ts';
export * from './levels.ts';

/**
 * The decision point's loader: turns an account row (or an address) into the decision's subject,
 * with one statement when the caller has nothing yet (`findWithPolicy` / `findByEmail` carry the
 * two-step, Trello-link and management columns — managers from `account_managers`) and none when it already holds such a row.
 */
export function subjectOf(account: AccountRow, now: number): AccountSubject {
  // From `account_managers` (decision 0030). Organizations set no rules yet (issue 13 adds them).
  const managers: Manager[] = (account.managers ?? []).map(([kind, id, name]) => ({ kind, id, name }));
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
  };
}

/** Whether a row came from a query that carries the policy columns. */
const hasPolicyColumns = (account: AccountRow) => account.two_step_enabled !== undefined && account.trello_linked !== undefined;

export function createPolicy(deps: { accounts: AccountQueries; clock: Clock }) {
  const { accounts, clock } = deps;
  const nowSeconds = () => Math.floor(clock.now() / 1000);

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

    /** An account with its subject, in one statement (inside `tx` when given); undefined when there is no such account. */
    async load(accountId: string, tx?: Queryable): Promise<{ account: AccountRow; subject: AccountSubject } | undefined> {
      const account = await accounts.findWithPolicy(accountId, tx);
      return account ? { account, subject: subjectOf(account, clock.now()) } : undefined;
    },

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

    /** The subject for an address: its account's, or the bare address when there is none. */
    async subjectForEmail(email: string): Promise<{ account: AccountRow | undefined; subject: Subject }> {
      const account = await accounts.findByEmail(email);
      return account ? { account, subject: subjectOf(account, clock.now()) } : { account: undefined, subject: { kind: 'address', email } };
    },
  };
}

export type Policy = ReturnType<typeof createPolicy>;
