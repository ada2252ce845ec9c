import type Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountRow } from '../../identity/accounts.ts';
import type { LoginFlow } from '../../oidc/login-flows.ts';
import type { Method } from '../../policy/policy.ts';
import type { PageError } from '../../http/messages.ts';
import type { LoginContext } from './interaction.ts';

/**
 * The shape every way of signing in has (docs/flows/login.md): a strategy renders its steps,
 * handles their submissions, and reports the factor it proved. What happens next — a second
 * factor, enrolment, a refusal, reopening a closed account, the waiting Trello link, telling the
 * engine — is the completion service's (completion.ts), so adding a method (a company's OIDC or
 * SAML connector, passkeys) is adding a strategy, not editing the login router.
 */
export interface Factor {
  /** The account proven: its row when the strategy has one at hand (the loader then costs no query). */
  account: AccountRow | { id: string };
  method: Method;
  /** RFC 8176 values this factor adds (pwd, otp, mfa; "fed" for a federated login). */
  amr: string[];
  /** The flow record as the strategy read or changed it (second factors, an answered offer, a deferred link). */
  flow?: LoginFlow | undefined;
  /** The strategy read the flow record in this request: `flow` undefined then means there is none (no second read). */
  flowRead?: boolean;
  /** Proven through a connector not yet trusted for the account (decision 0086): no delegated two-step. */
  undelegated?: boolean;
  /** Which step proved it, for the logs; the Trello link offer follows the password step only. */
  via: string;
  /**
   * Where a refusal is shown: the strategy's own page (the password page keeps the address
   * typed), else the login problem page. `wait`: a throttle wait due, shown instead of the reason.
   */
  refusal?: { view: string; data: Record<string, unknown>; wait?: PageError | undefined };
}

export interface StrategyStep {
  method: 'get' | 'post';
  /** Under /interaction/:uid. */
  path: string;
  /** Answers with a page of its own, or reports the factor it proved. */
  handle(ctx: Context, it: LoginContext): Promise<Factor | undefined | void>;
}

export interface LoginStrategy {
  name: string;
  /** The methods it proves (src/policy/decision.ts). */
  methods: readonly Method[];
  steps: readonly StrategyStep[];
  /** Routes outside the interaction's path (an upstream provider's one redirect URI). */
  outside?: Router;
}

/** Second factors; every other method is a first factor. */
export const isSecondFactor = (method: Method) => method === 'totp' || method === 'recovery_code';

/**
 * Where a login through a company's identity provider starts (the connector strategy's first
 * step, decision 0033): the identifier step and the completion service send the browser here when
 * the decision point answers `use_connector`. `email`: the address typed, passed upstream as a hint.
 */
export function connectorStartPath(uid: string, connector: string, email?: string): string {
  const path = `/interaction/${encodeURIComponent(uid)}/sso/${encodeURIComponent(connector)}`;
  return email ? `${path}?login_hint=${encodeURIComponent(email)}` : path;
}

/** The password page for the address the identifier step took (a GET: Post/Redirect/Get). */
export const passwordPagePath = (uid: string, email: string): string => `/interaction/${encodeURIComponent(uid)}/password?email=${encodeURIComponent(email)}`;
