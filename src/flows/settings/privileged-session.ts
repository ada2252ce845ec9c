import type { Context } from 'koa';
import type { AccountRow } from '../../identity/accounts.ts';
import type { ConfirmOptions, Proof, Reauthentication, ReauthStage } from '../../identity/reauthentication.ts';
import type { Throttle } from '../../identity/throttle.ts';
import { throttled } from '../throttled.ts';
import { unlessBusy } from '../busy.ts';
import type { SignedInSession } from '../../oidc/browser-session.ts';
import type { PageError } from '../../http/messages.ts';

/** What a settings page shows to confirm a change: the decision point's options and the way to log in again. */
export type ConfirmView = ConfirmOptions & { signInAgain: string };

/**
 * Privileged sessions in the settings pages (docs/flows/settings.md, decision 0027): what a
 * sensitive form asks for, and the throttle of a password typed on it. The rule itself — is
 * the session's login recent and strong enough, or what else proves the person — is the
 * decision point's (`src/identity/reauthentication.ts` asks it); these helpers only show and
 * count.
 */
export function privilegedSession(deps: {
  reauthentication: Reauthentication;
  throttle: Throttle;
  account: (ctx: Context) => AccountRow;
  login: (ctx: Context) => SignedInSession['login'];
}) {
  const { reauthentication, throttle, account, login } = deps;

  /**
   * The page's "Confirm it's you" part. Logging in again goes through the settings' own
   * authorization with `prompt=login` (OIDC Core §3.1.2.1), back to `page` afterwards.
   */
  async function confirmView(ctx: Context, page: string, stage: ReauthStage = 'reauthenticate'): Promise<ConfirmView> {
    const options = await reauthentication.options(account(ctx), login(ctx), stage);
    return { ...options, signInAgain: `/account/login?reauth=1&next=${encodeURIComponent(page)}` };
  }

  /**
   * Runs a sensitive change with the session's login and what was typed. A password typed is
   * throttled like a login with it (a stolen session must not become a way to guess it); when
   * nothing is typed nothing is guessed, and the decision point alone decides.
   */
  async function sensitive<R extends { ok: true } | { ok: false; problem: string }>(ctx: Context, typed: string, run: (proof: Proof) => Promise<R>): Promise<R | { ok: false; problem: PageError }> {
    const proof: Proof = { login: login(ctx), password: typed || undefined };
    // A full password hashing: the form again, 503 with Retry-After, the attempt given back (decision 0063).
    return unlessBusy(ctx, async () => {
      if (!typed) return run(proof);
      const guarded = await throttled(ctx, throttle, { scope: 'password', subject: account(ctx).email }, () => run(proof), (r) => (!r.ok && r.problem === 'password.current_wrong' ? 'failed' : 'passed'));
      if (guarded.refused) return { ok: false as const, problem: guarded.error };
      const { result } = guarded;
      return result.ok ? result : { ...result, problem: guarded.orWait(result.problem) };
    });
  }

  /** A refused change's status: 403 when a new login is needed or the decision point refuses, else 400. */
  const statusOf = (problem: PageError): number => (typeof problem === 'string' && (problem === 'reauth.required' || problem.startsWith('policy.')) ? 403 : 400);

  return { confirmView, sensitive, statusOf };
}
