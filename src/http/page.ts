import type { Context } from 'koa';
import { csrfToken } from './csrf.ts';
import { errorMessage, type PageError } from './messages.ts';
import type { Views } from './views.ts';

export type PageRenderer = (ctx: Context, status: number, name: string, data: Record<string, unknown>, error?: PageError) => void;

/**
 * The one way our forms' pages are answered: HTML, never cached, with the CSRF token and the
 * error's message. `defaults` are values every page of a flow gets (data given per page wins).
 * A wait message (`waitMessage`) has already set 429 and Retry-After; that status is kept.
 */
export function pageRenderer(views: Views, defaults: Record<string, unknown> = {}): PageRenderer {
  return (ctx, status, name, data, error) => {
    ctx.status = ctx.response.get('Retry-After') ? 429 : status;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = views.render(name, { ...defaults, ...data, csrf: csrfToken(ctx), error: errorMessage(error) });
  };
}
