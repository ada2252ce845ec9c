import type { Middleware } from 'koa';
import { AppError, isAppError, UNAVAILABLE_RETRY_AFTER_SECONDS } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { messageFor } from './messages.ts';
import type { Views } from './views.ts';

/**
 * PostgreSQL's answers to input it cannot store or read as text (22021: a NUL or invalid UTF-8
 * byte; 22P05: \u0000 in JSON): the client's bytes, not our failure. The edge refuses them first;
 * this keeps any path that was missed a 400.
 */
const UNSTORABLE_INPUT = new Set(['22021', '22P05']);

/**
 * The database's refusal to attach anything to a deleted organization (migration 0029's trigger,
 * its own SQLSTATE): an admin's action that raced the deletion. The organization is gone — the
 * answer every other request about it gets, 404.
 */
const ORGANIZATION_DELETED = 'LY404';

/** Maps anything thrown below to an AppError without leaking internals (the management API's error answers use it too). */
export function normalise(err: unknown): AppError {
  if (isAppError(err)) return err;
  const e = err as { status?: number; statusCode?: number; type?: string; expose?: boolean; code?: unknown };
  if (typeof e.code === 'string' && UNSTORABLE_INPUT.has(e.code)) return new AppError('request.invalid_characters', 400, { cause: err });
  if (e.code === ORGANIZATION_DELETED) return new AppError('request.not_found', 404, { cause: err });
  // Two changes to one organization at the same moment that the database could only settle by
  // cancelling one (a deadlock, 40P01): nothing of this one was stored; trying again works.
  if (e.code === '40P01') return new AppError('request.concurrent_change', 409, { cause: err });
  const status = e.status ?? e.statusCode;
  // The database did not answer (reached through the engine's models): retry later, not a bug.
  if (status === 503) return new AppError('server.unavailable', 503, { cause: err, expose: false });
  if (status === 413) return new AppError('request.too_large', 413, { cause: err });
  if (status === 404) return new AppError('request.not_found', 404, { cause: err });
  if (status && status >= 400 && status < 500 && e.expose !== false) return new AppError('request.invalid_body', status, { cause: err });
  return new AppError('server.error', 500, { cause: err, expose: false });
}

/**
 * Refusals of input that could not be read or stored: worth an operator's look (warn), not an
 * alarm. 501 is among them: a method no route of ours knows (PROPFIND, MKCOL …; RFC 9110
 * §15.6.2), which anyone can send — at error level it would let anyone raise alarms at will.
 */
const MALFORMED = new Set([400, 411, 413, 414, 415, 422, 431, 501]);

/** Logs an error answer: server errors with the thrown error, refusals by code (never a body or a secret). */
export function logError(log: Logger | undefined, thrown: unknown, err: AppError): void {
  if (err.status === 503) log?.warn({ code: err.code, reason: (thrown as { error_detail?: string }).error_detail ?? (thrown as Error).message }, 'service unavailable');
  else if (err.status >= 500 && !MALFORMED.has(err.status)) log?.error({ err: thrown, code: err.code }, 'request failed');
  else log?.[MALFORMED.has(err.status) ? 'warn' : 'info']({ code: err.code, status: err.status }, 'request refused');
}

/**
 * The one top-level handler for our own routes (convention 2): HTML for browsers, JSON for API
 * callers, never a stack trace. Server errors are logged with the request id, which the page
 * shows as a reference.
 *
 * `methodsAt`: the methods a path that nothing answered does take (oidc-provider's endpoints,
 * which answer only their own methods and leave the rest unanswered): another method there is 405
 * with `Allow` (RFC 9110 §15.5.6), not "not found". Asked only once nothing answered.
 */
export function errorHandler(views: Views, methodsAt: (path: string) => readonly string[] | undefined = () => undefined): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        const allowed = methodsAt(ctx.path);
        if (allowed && !allowed.includes(ctx.method)) {
          ctx.set('Allow', allowed.join(', '));
          throw new AppError('request.method_not_allowed', 405);
        }
        throw new AppError('request.not_found', 404);
      }
      // A router's 405 (its Allow header stays) answered like every other error, not as bare text.
      if (ctx.status === 405 && ctx.body == null) throw new AppError('request.method_not_allowed', 405);
      // …and its 501 for a method it does not know at all, the same way.
      if (ctx.status === 501 && ctx.body == null) throw new AppError('request.method_not_implemented', 501);
    } catch (thrown) {
      const err = normalise(thrown);
      logError(ctx.state.log as Logger | undefined, thrown, err);
      const message = messageFor(err.code);
      ctx.status = err.status;
      if (err.status === 503) ctx.set('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
      const oauthError = err.details?.oauthError;
      // An API answers JSON whatever the Accept header says: its callers are programs.
      if (ctx.path.startsWith('/api/') || ctx.accepts('html', 'json') === 'json') {
        // A protocol client reads RFC 6749 §5.2's members; our own APIs read code and message.
        ctx.body = typeof oauthError === 'string'
          ? { error: oauthError, error_description: message.text }
          : { error: err.code, message: message.text, requestId: ctx.state.requestId };
      } else {
        ctx.type = 'html';
        ctx.body = views.render('errors/error', { title: message.title, text: message.text, reference: ctx.state.requestId });
      }
    }
  };
}
