import type { Context } from 'koa';
import type { AccountRow } from '../../identity/accounts.ts';
import type { RequestMeta, SecurityEvents } from '../../identity/security-events.ts';
import type { Interactions } from '../../oidc/interactions.ts';
import type { LoginFlow, LoginFlows } from '../../oidc/login-flows.ts';
import { levelOf, type AccountSubject, type DenyReason, type Policy } from '../../policy/policy.ts';
import { AppError } from '../../shared/errors.ts';
import { messageFor } from '../../http/messages.ts';
import { pageRenderer } from '../../http/page.ts';
import { requestMeta } from '../../http/request-meta.ts';
import type { Views } from '../../http/views.ts';
import type { LoginContext } from './interaction.ts';
import { connectorStartPath, isSecondFactor, type Factor } from './strategy.ts';

/**
 * The one place a login is completed (docs/flows/login.md). Every strategy — password, Trello
 * password and its review, Google, the second step and enrolment, the end of sign-up — reports
 * the factor it proved here; this asks the decision point (src/policy/) what follows and does it:
 *
 * - `second_factor` → the flow record remembers the account and its methods; 303 to the code page;
 * - `enrol` → the same, then two-step verification is set up before going on;
 * - `allow` → a closed account in its grace period is reopened, work waiting for the whole login
 *   is done (the Trello link), the audit event is written and the engine is told — with the
 *   level the decision gave;
 * - `deny` → the reason, a `policy.*` message, on the strategy's page;
 * - `use_connector` → the account must sign in through its company's identity provider: the
 *   browser goes to the connector strategy's start step (decision 0033);
 * - `change_password` → every factor is proven but the password is older than the account's
 *   policy allows: the flow record keeps the proof, the person sets a new password
 *   (password-expiry.ts), and the login is reported again (decision 0039).
 *
 * Nothing else calls `interactions.finishLogin`.
 */
export interface CompletionHooks {
  /**
   * After a first factor the policy lets go on, before the second step: may answer with a page
   * of its own and return true (the Trello link offer); the strategy that answers it reports the
   * same factor again, with the flow marking the interlude as done.
   */
  interlude?: (ctx: Context, it: LoginContext, proven: { account: AccountRow; factor: Factor; flow: LoginFlow | undefined }) => Promise<boolean>;
  /** Work proven earlier in the interaction that waits for the whole login (the Trello link). */
  beforeFinish?: (ctx: Context, it: LoginContext, done: { accountId: string; flow: LoginFlow | undefined }) => Promise<void>;
}

/** The status a refusal answers with: a credential that no longer works is 401, a closed door 403. */
const REFUSAL_STATUS: Record<DenyReason, number> = {
  'policy.account_inactive': 403,
  'policy.trello_password_retired': 401,
  'policy.two_step_required': 403,
  'policy.login_again': 401,
  'policy.method_not_allowed': 403,
};

export function createLoginCompletion(deps: {
  policy: Policy;
  flows: LoginFlows;
  interactions: Interactions;
  events: SecurityEvents;
  views: Views;
  hooks?: CompletionHooks;
  /** Cancels a closure within its grace period, telling the owner (src/identity/account-closure.ts). */
  reopen: (account: AccountRow, meta: RequestMeta) => Promise<boolean>;
}) {
  const { policy, flows, interactions, events } = deps;
  const page = pageRenderer(deps.views);

  async function refuse(ctx: Context, it: LoginContext, factor: Factor, accountId: string, reason: DenyReason, flow: LoginFlow | undefined) {
    if (flow) await flows.end(it.uid);
    await events.record({ type: 'login.failed', accountId, reason: reason.replace(/^policy\./, '') }, requestMeta(ctx, it.clientId));
    ctx.state.log?.info({ accountId, clientId: it.clientId, method: factor.method, reason }, 'login refused by policy');
    const status = REFUSAL_STATUS[reason];
    if (factor.refusal) return page(ctx, status, factor.refusal.view, { uid: it.uid, clientName: it.clientName, ...factor.refusal.data }, factor.refusal.wait ?? reason);
    page(ctx, status, 'login/federated-problem', { ...messageFor(reason), uid: it.uid });
  }

  async function finish(ctx: Context, it: LoginContext, factor: Factor, account: AccountRow, subject: AccountSubject, amr: string[], acr: ReturnType<typeof levelOf>, flow: LoginFlow | undefined) {
    // The owner closed it and came back within the grace period: the whole login proves it.
    if (subject.status === 'closed' && !(await deps.reopen(account, requestMeta(ctx, it.clientId)))) return refuse(ctx, it, factor, subject.id, 'policy.account_inactive', flow);
    await deps.hooks?.beforeFinish?.(ctx, it, { accountId: subject.id, flow });
    if (flow) await flows.end(it.uid);
    await events.record({ type: 'login.succeeded', accountId: subject.id, detail: { amr } }, requestMeta(ctx, it.clientId));
    ctx.state.log?.info({ accountId: subject.id, clientId: it.clientId, method: factor.method, via: factor.via }, 'login succeeded');
    await interactions.finishLogin(ctx, { accountId: subject.id, amr, acr });
  }

  return {
    /** A strategy proved a factor: decide what follows and do it. */
    async proved(ctx: Context, it: LoginContext, factor: Factor): Promise<void> {
      const second = isSecondFactor(factor.method);
      const loaded = 'email' in factor.account
        ? { account: factor.account, subject: await policy.subject(factor.account) }
        : await policy.load(factor.account.id);
      // The account went away between two steps (erased): the flow is over.
      if (!loaded) throw new AppError('login.second_step_expired', 400);
      const { account, subject } = loaded;
      // What this interaction already holds (a deferred Trello link, an earlier step), when the
      // strategy did not read it itself.
      const flow = factor.flow ?? (factor.flowRead ? undefined : await flows.find(it.uid));
      const earlier = second && flow?.accountId === account.id ? flow.amr : [];
      const amr = [...new Set([...earlier, ...factor.amr])];

      const decision = policy.decide({ subject, stage: second ? 'second_factor' : 'first_factor', method: factor.method, wantedAcr: it.wantedAcr, ...(second ? { earlierAmr: earlier } : {}), ...(factor.undelegated ? { undelegated: true } : {}) });
      switch (decision.outcome) {
        case 'deny':
          return refuse(ctx, it, factor, account.id, decision.reason, flow);
        case 'use_connector':
          // This account signs in through its company's identity provider only (decision 0033):
          // whatever was proven here does not count; the browser goes to the connector's login.
          if (flow) await flows.end(it.uid);
          ctx.state.log?.info({ accountId: account.id, clientId: it.clientId, method: factor.method, connector: decision.connector }, 'login sent to the company identity provider');
          ctx.status = 303;
          return ctx.redirect(connectorStartPath(it.uid, decision.connector));
        case 'reauthenticate':
          return refuse(ctx, it, factor, account.id, 'policy.method_not_allowed', flow);
        case 'change_password': {
          // Every factor is proven, but the password is older than the account's policy allows
          // (decision 0039): a new one is set first (password-expiry.ts), which reports the same
          // login again; the flow record holds what was proven meanwhile.
          const kept = flow && (flow.accountId === undefined || flow.accountId === account.id) ? flow.trello : undefined;
          await flows.save(it, { step: 'change_password', accountId: account.id, amr, ...(kept ? { trello: kept } : {}) });
          ctx.state.log?.info({ accountId: account.id, clientId: it.clientId }, 'login held: the password is older than the policy allows');
          ctx.status = 303;
          return ctx.redirect(`/interaction/${it.uid}/password/expired`);
        }
        default:
          break;
      }
      if (!second && (await deps.hooks?.interlude?.(ctx, it, { account, factor, flow }))) return;
      const trello = flow && (flow.accountId === undefined || flow.accountId === account.id) ? flow.trello : undefined;
      if (decision.outcome === 'second_factor') {
        await flows.save(it, { step: 'second_factor', accountId: account.id, amr, ...(trello ? { trello } : {}) });
        // The code page is a GET of its own (Post/Redirect/Get), as every page a step leads to.
        ctx.status = 303;
        return ctx.redirect(`/interaction/${it.uid}/two-step`);
      }
      if (decision.outcome === 'enrol') {
        await flows.save(it, { step: 'enrol', accountId: account.id, amr, ...(trello ? { trello } : {}) });
        ctx.status = 303;
        return ctx.redirect(`/interaction/${it.uid}/two-step/enrol`);
      }
      await finish(ctx, it, factor, account, subject, amr, decision.acr ?? levelOf(amr), flow);
    },
  };
}

export type LoginCompletion = ReturnType<typeof createLoginCompletion>;
