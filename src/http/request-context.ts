import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from '../shared/logger.ts';

const INCOMING_ID = /^[A-Za-z0-9._-]{8,128}$/;

/**
 * Gives every request an id (a well-formed incoming X-Request-Id is kept, so a proxy's id
 * follows the request), a child logger carrying it, and one access-log line when it ends.
 */
export function requestContext(logger: Logger): Middleware {
  return async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = INCOMING_ID.test(incoming) ? incoming : randomUUID();
    const log = logger.child({ reqId: requestId });
    ctx.state.requestId = requestId;
    ctx.state.log = log;
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    try {
      await next();
    } finally {
      const status = ctx.status;
      // A 503 is an outage the operator already sees at warn level (the database is away), not a bug.
      log[status === 503 ? 'warn' : status >= 500 ? 'error' : 'info']({
        method: ctx.method,
        path: ctx.path,
        status,
        ms: Math.round((performance.now() - started) * 10) / 10,
      }, 'request');
    }
  };
}
