import type { Context } from 'koa';
import { logError } from '../http/error-handler.ts';
import { BUSY } from '../http/page.ts';
import { type AppError, isAppError } from '../shared/errors.ts';

export { BUSY };

/** The password hashing was full when a step asked for its check (src/identity/password-hasher.ts). */
export const isBusy = (err: unknown): err is AppError => isAppError(err) && err.code === BUSY;

/**
 * Runs a form's step that checks or hashes a password (decision 0063). When the hashing queue is
 * full (issue 14, "Overload") the hasher refuses the step's first hash, before anything was
 * checked or stored; the step then answers the problem `BUSY`, which the page renderer answers
 * 503 with Retry-After, on the same form with what was typed (never a password). The person
 * sends it again in a few seconds instead of starting over from an error page. A throttle's
 * attempt reserved for the check was given back by `throttled` (src/flows/throttled.ts).
 */
export async function unlessBusy<R>(ctx: Context, step: () => Promise<R>): Promise<R | { ok: false; problem: typeof BUSY }> {
  try {
    return await step();
  } catch (err) {
    if (!isBusy(err)) throw err;
    logError(ctx.state.log, err, err);
    return { ok: false, problem: BUSY };
  }
}
