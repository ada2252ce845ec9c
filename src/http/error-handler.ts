import type { Middleware } from 'koa';
import { AppError, isAppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { messageFor } from './messages.ts';
import type { Views } from './views.ts';

/** Maps anything thrown below to an AppError without leaking internals. */
function normalise(err: unknown): AppError {
  if (isAppError(err)) return err;
  const e = err as { status?: number; statusCode?: number; type?: string; expose?: boolean };
  const status = e.status ?? e.statusCode;
  if (status === 413) return new AppError('request.too_large', 413, { cause: err });
  if (status === 404) return new AppError('request.not_found', 404, { cause: err });
  if (status && status >= 400 && status < 500 && e.expose !== false) return new AppError('request.invalid_body', status, { cause: err });
  return new AppError('server.error', 500, { cause: err, expose: false });
}

/**
 * The one top-level handler for our own routes (convention 2): HTML for browsers, JSON for API
 * callers, never a stack trace. Server errors are logged with the request id, which the page
 * shows as a reference.
 */
export function errorHandler(views: Views): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new AppError('request.not_found', 404);
      // A router's 405 (its Allow header stays) answered like every other error, not as bare text.
      if (ctx.status === 405 && ctx.body == null) throw new AppError('request.method_not_allowed', 405);
    } catch (thrown) {
      const err = normalise(thrown);
      const log = ctx.state.log as Logger | undefined;
      if (err.status >= 500) log?.error({ err: thrown, code: err.code }, 'request failed');
      else log?.info({ code: err.code, status: err.status }, 'request refused');
      const message = messageFor(err.code);
      ctx.status = err.status;
      if (err.status === 503) ctx.set('Retry-After', '5');
      // An API answers JSON whatever the Accept header says: its callers are programs.
      if (ctx.path.startsWith('/api/') || ctx.accepts('html', 'json') === 'json') {
        ctx.body = { error: err.code, message: message.text, requestId: ctx.state.requestId };
      } else {
        ctx.type = 'html';
        ctx.body = views.render('errors/error', { title: message.title, text: message.text, reference: ctx.state.requestId });
      }
    }
  };
}
