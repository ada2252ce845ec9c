import type { Context } from 'koa';
import type { Made, Throttle, ThrottleScope } from '../identity/throttle.ts';
import { waitMessage, type PageError } from '../http/messages.ts';
import { isBusy } from './busy.ts';

/**
 * The throttle's sequence around one guessable check, in one place (decision 0011, revised by
 * 0022): `attempt` before the check (the subject's counter is reserved first, so parallel
 * guesses cannot all slip through), then `succeeded` (the subject's counter starts over) or
 * `failed` (the client address is charged too, and the wait now due is shown instead of the
 * check's own message), or neither — `kept`: the attempt stays counted against the subject
 * but nothing was proven either way (a Trello password typed at an account's address proves
 * the member, not the account).
 */
export type Verdict = 'passed' | 'failed' | 'kept';

/**
 * The one counter of Trello passwords typed by a signed-in account, in Settings → Trello and in
 * the link offer at login (decision 0076): its id, so that a new address brings no new allowance.
 */
export const trelloGuessSubject = (accountId: string) => `trello-account:${accountId}`;

export type Throttled<R> =
  /** Refused before the check ran: the wait message (status 429 and Retry-After are set). */
  | { refused: true; error: PageError }
  /**
   * The check ran. `orWait(problem)`: the wait message when a wait is now due (it sets 429 and
   * Retry-After, so it is asked for only when a failure is shown), else `problem`.
   */
  | { refused: false; result: R; orWait: <P extends PageError | undefined>(problem: P) => PageError | P };

export interface Guard {
  scope: ThrottleScope;
  /** What is counted: the address typed, the account, the sign-up… (a keyed hash is stored). */
  subject: string;
  /** A device cookie's id for this subject (src/http/device-cookie.ts): counted under its own key. */
  device?: string | undefined;
  /** The reservation, when the caller made it in a statement of its own (`Throttle.reservation`). */
  made?: Made | undefined;
}

export async function throttled<R>(ctx: Context, throttle: Throttle, guard: Guard, check: () => Promise<R>, verdict: (result: R) => Verdict): Promise<Throttled<R>> {
  const gate = await throttle.attempt(guard.scope, guard.subject, ctx.ip, guard.device, guard.made);
  if (!gate.ok) return { refused: true, error: waitMessage(ctx, gate.retryAfterSeconds) };
  let result: R;
  try {
    result = await check();
  } catch (err) {
    // The check could not run (the password hashing filled up since the caller looked): the
    // attempt is given back before the 503 goes out.
    if (isBusy(err)) await throttle.release(gate);
    throw err;
  }
  switch (verdict(result)) {
    case 'passed':
      await throttle.succeeded(guard.scope, guard.subject, guard.device);
      return { refused: false, result, orWait: (problem) => problem };
    case 'kept':
      return { refused: false, result, orWait: (problem) => problem };
    case 'failed': {
      const seconds = await throttle.failed(guard.scope, ctx.ip, gate);
      return { refused: false, result, orWait: (problem) => (seconds > 0 ? waitMessage(ctx, seconds) : problem) };
    }
  }
}
