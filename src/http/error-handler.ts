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
  // The database did not answer (reached through the engine's models): retry later, not a bug.
  if (status === 503) return new AppError('server.unavailable', 503, { cause: err, expose: false });
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
    } catch (thrown) {
      const err = normalise(thrown);
      const log = ctx.state.log as Logger | undefined;
      if (err.status === 503) log?.warn({ code: err.code, reason: (thrown as { error_detail?: string }).error_detail ?? (thrown as Error).message }, 'service unavailable');
      else if (err.status >= 500) log?.error({ err: thrown, code: err.code }, 'request failed');
      else log?.info({ code: err.code, status: err.status }, 'request refused');
      const message = messageFor(err.code);
      ctx.status = err.status;
      if (err.status === 503) ctx.set('Retry-After', '5');
      if (ctx.accepts('html', 'json') === 'json') {
        ctx.body = { error: err.code, message: message.text, requestId: ctx.state.requestId };
      } else {
        ctx.type = 'html';
        ctx.body = views.render('errors/error', { title: message.title, text: message.text, reference: ctx.state.requestId });
      }
    }
  };
}
