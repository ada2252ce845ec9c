import type { Context } from 'koa';
import { csrfToken } from './csrf.ts';
import { errorMessage, type PageError } from './messages.ts';
import type { Views } from './views.ts';
import { UNAVAILABLE_RETRY_AFTER_SECONDS } from '../shared/errors.ts';

/**
 * The problem of a form whose password could not be checked because the password hashing is full
 * (the hasher's `login.busy`; issue 14, "Overload"; decisions 0061, 0063).
 */
export const BUSY = 'login.busy';

export type PageRenderer = (ctx: Context, status: number, name: string, data: Record<string, unknown>, error?: PageError) => void;

/**
 * The one way our forms' pages are answered: HTML, never cached, with the CSRF token and the
 * error's message. `defaults` are values every page of a flow gets (data given per page wins).
 * A wait message (`waitMessage`) has already set 429 and Retry-After; that status is kept. The
 * busy problem (`BUSY`) is always 503 with Retry-After (RFC 9110 §15.6.4), whatever status the
 * form's route gives its problems: the person is asked to send the same form again in a few
 * seconds, and a client that honours Retry-After does so by itself.
 */
export function pageRenderer(views: Views, defaults: Record<string, unknown> = {}): PageRenderer {
  return (ctx, status, name, data, error) => {
    if (error === BUSY) {
      ctx.status = 503;
      ctx.set('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
    } else {
      ctx.status = ctx.response.get('Retry-After') ? 429 : status;
    }
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = views.render(name, { ...defaults, ...data, csrf: csrfToken(ctx), error: errorMessage(error) });
  };
}
