import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from '../shared/logger.ts';

const INCOMING_ID = /^[A-Za-z0-9._-]{8,128}$/;

/** 5xx answers about something outside this server (see the access line's level). */
const OUTSIDE = new Set([501, 502, 503, 504]);

const ROOT = Symbol('root logger');
const CHILD = Symbol('request logger');

/**
 * `ctx.state` of every request: `log` is the request's child logger, made when something first
 * asks for it (a getter on this prototype: cheaper per request than defining one on each state).
 */
const statePrototype = {
  get log(): Logger {
    const state = this as unknown as { [ROOT]: Logger; [CHILD]?: Logger; requestId: string };
    return (state[CHILD] ??= state[ROOT].child({ reqId: state.requestId }));
  },
  set log(replacement: Logger) {
    (this as unknown as { [CHILD]?: Logger })[CHILD] = replacement;
  },
};

/**
 * Gives every request an id (a well-formed incoming X-Request-Id is kept, so a proxy's id
 * follows the request), a child logger carrying it (`ctx.state.log`), and one access-log line
 * when it ends.
 *
 * The child logger is made only when something asks for it: most requests on the protocol's
 * hot path (/token, /me, introspection) log nothing but the access line, which is always written
 * with the same `reqId` through the parent (issue 14: pino's child() was a measurable share of
 * what Lanyard added per request there).
 */
export function requestContext(logger: Logger): Middleware {
  // The access line's own logger, without the redaction paths: its fields are ours (method, path
  // without the query, status, time, request id), never a credential's key, and pino's redaction
  // of the root logger's wildcard paths cost 12 µs a line against 4 µs for the whole line
  // without it — a tenth of what Lanyard adds to a client_credentials request (issue 14). Lines
  // that carry anything else go through the request logger, redacted as before.
  const access = logger.child({}, { redact: { paths: [] } });
  return async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = INCOMING_ID.test(incoming) ? incoming : randomUUID();
    const state = Object.assign(Object.create(statePrototype) as Record<string | symbol, unknown>, ctx.state, { [ROOT]: logger, requestId });
    ctx.state = state;
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    try {
      await next();
    } finally {
      const status = ctx.status;
      // Error level is for our own failures (500). The other 5xx name a problem outside this
      // server, which the operator sees at warn: 503 an outage (the database is away), 502 and 504
      // an upstream identity provider that did not answer (an admin's connector test), 501 a
      // client's unknown method (src/http/error-handler.ts) — anyone can cause those.
      const level = status >= 500 && !OUTSIDE.has(status) ? 'error' : status >= 500 ? 'warn' : 'info';
      const line = { method: ctx.method, path: ctx.path, status, ms: Math.round((performance.now() - started) * 10) / 10 };
      // Through the access logger even when the request made its child: the same line (the child
      // binds nothing but reqId), without the redaction pass a login's request paid for it.
      if (access.isLevelEnabled(level)) access[level]({ reqId: requestId, ...line }, 'request');
    }
  };
}
