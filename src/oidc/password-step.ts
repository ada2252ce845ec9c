import type { AccountRow } from '../identity/accounts.ts';
import type { Made, Reservation } from '../identity/throttle.ts';
import type { Policy, Subject } from '../policy/policy.ts';
import { emailDomainOf } from '../persistence/queries/accounts.ts';
import type { PasswordStepQueries } from '../persistence/queries/password-step.ts';
import type { LoginFlow, LoginFlows } from './login-flows.ts';

/** What the password step knows after its one statement. */
export interface PasswordStepFacts {
  /** `discover`'s subject for the address: whether its organization sends it elsewhere. */
  discovered: Subject;
  /** The throttle's reservation, made in the same statement; undefined when the address's domain is held (reserve after the decision). */
  made: Made | undefined;
  /** The account at the address (`findForLogin`'s row), if any. */
  account: AccountRow | undefined;
  /** The interaction's flow record, if any: read, so the completion service does not read it again. */
  flow: LoginFlow | undefined;
}

/**
 * The password step's reads and its throttle reservation in one statement (issue 14, decision
 * 0050; src/persistence/queries/password-step.ts): the domain's holder for the decision point,
 * the subject's reservation for the throttle, the account for the hash check, the flow record
 * for the completion service — each then handed to the service that owns it.
 */
export function createPasswordStep(deps: { queries: PasswordStepQueries; policy: Pick<Policy, 'discovered'>; flows: Pick<LoginFlows, 'keyOf' | 'fromRow'> }) {
  return {
    async read(uid: string, email: string, reservation: Reservation): Promise<PasswordStepFacts> {
      const row = await deps.queries.lookup({ reservation, email, domain: emailDomainOf(email), flowUidHash: deps.flows.keyOf(uid) });
      return {
        discovered: deps.policy.discovered(email, row.held, row.account),
        made: row.reserved ? { reservation, reserved: row.reserved } : undefined,
        account: row.account,
        flow: row.flow ? deps.flows.fromRow(uid, row.flow) : undefined,
      };
    },
  };
}

export type PasswordStep = ReturnType<typeof createPasswordStep>;
