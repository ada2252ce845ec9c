import { z } from 'zod';
import type { AccountRow } from '../../identity/accounts.ts';
import type { PasswordResetService } from '../../identity/password-reset.ts';
import type { PasswordProblem } from '../../identity/password-policy.ts';
import type { BrowserSessions } from '../../oidc/browser-session.ts';
import type { LoginFlow, LoginFlows } from '../../oidc/login-flows.ts';
import type { Method, Policy } from '../../policy/policy.ts';
import { AppError } from '../../shared/errors.ts';
import type { PageError } from '../../http/messages.ts';
import type { PageRenderer } from '../../http/page.ts';
import { requestMeta } from '../../http/request-meta.ts';
import { parseForm } from '../../http/validate.ts';
import type { LoginContext } from './interaction.ts';
import type { Factor, LoginStrategy } from './strategy.ts';
import { BUSY, unlessBusy } from '../busy.ts';

const newPasswordInput = z.object({ password: z.string().max(4096).default('') });

/**
 * "Your password has expired" (decision 0039): the decision point answered `change_password` —
 * every factor of this login is proven, but the password is older than the account's
 * organization allows. The flow record (written by the completion service) holds the account and
 * what was proven; this step sets the new password under the account's rules and reports the same
 * login again, which the decision point now lets finish. Reachable only at that step of this
 * interaction: a password alone never gets here when a second factor is due.
 */
export function passwordExpiryStrategy(deps: {
  passwords: Pick<PasswordResetService, 'renew' | 'minLengthOf'>;
  policy: Policy;
  flows: LoginFlows;
  sessions: Pick<BrowserSessions, 'current'>;
  page: PageRenderer;
}): LoginStrategy {
  const { flows } = deps;

  async function pending(it: LoginContext): Promise<{ flow: LoginFlow; account: AccountRow }> {
    const flow = await flows.find(it.uid);
    if (!flow?.accountId || flow.step !== 'change_password') throw new AppError('login.second_step_expired', 400);
    const loaded = await deps.policy.load(flow.accountId);
    if (!loaded || loaded.account.status !== 'active') {
      await flows.end(it.uid);
      throw new AppError('policy.account_inactive', 403);
    }
    return { flow, account: loaded.account };
  }

  const render = async (ctx: Parameters<LoginStrategy['steps'][number]['handle']>[0], it: LoginContext, account: AccountRow, status: number, error?: PageError) =>
    deps.page(ctx, status, 'login/password-expired', { title: 'Choose a new password', uid: it.uid, clientName: it.clientName, email: account.email, minLength: await deps.passwords.minLengthOf(account.id) }, error);

  /** The login proven before the change, reported again: its last factor, with what the flow holds. */
  function again(flow: LoginFlow, account: AccountRow): Factor {
    const method: Method = flow.amr.includes('otp') ? 'totp' : flow.amr.includes('mfa') ? 'recovery_code' : 'password';
    // By id: the completion service reads the account afresh, with the password just set.
    return { account: { id: account.id }, flow, method, amr: method === 'password' ? flow.amr : [], via: 'password-expiry' };
  }

  return {
    name: 'password-expiry',
    methods: [],
    steps: [
      {
        method: 'get',
        path: '/password/expired',
        async handle(ctx, it) {
          const { account } = await pending(it);
          await render(ctx, it, account, 200);
        },
      },
      {
        method: 'post',
        path: '/password/expired',
        async handle(ctx, it) {
          const { flow, account } = await pending(it);
          const input = parseForm(ctx, newPasswordInput);
          // This browser's session of the same account (a login again over an old session) stays;
          // every other one ends, as with any password change.
          const current = await deps.sessions.current(ctx);
          // A full password hashing answers this form again, 503 with Retry-After (decision 0063).
          const result = await unlessBusy(ctx, () => deps.passwords.renew(account.id, input.password, current?.accountId === account.id ? current.uid : undefined, requestMeta(ctx, it.clientId)));
          if (!result.ok) {
            if (result.problem === 'policy.account_inactive') throw new AppError(result.problem, 403);
            return render(ctx, it, account, 400, result.problem as PasswordProblem | 'password.same' | typeof BUSY);
          }
          ctx.state.log?.info({ accountId: account.id, clientId: it.clientId }, 'expired password replaced at login');
          return again(flow, account);
        },
      },
    ],
  };
}
