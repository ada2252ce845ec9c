import Router from '@koa/router';
import type { Database } from '../persistence/db.ts';
import { schemaStatus } from '../persistence/migrate.ts';
import { UNAVAILABLE_RETRY_AFTER_SECONDS } from '../shared/errors.ts';

/** A load balancer's probe must get an answer within a second, whatever the database does. */
export const READINESS_BUDGET_MS = 800;

type Readiness = { ready: true } | { ready: false; reason: string };

/**
 * /healthz: the process is up (liveness). /readyz: the database answers and every migration this
 * release knows is applied (readiness) — a load balancer sends traffic only then.
 *
 * The check runs against a timer: a database that accepts connections but answers nothing (a
 * frozen server, a partition) makes the instance not ready after READINESS_BUDGET_MS, while the
 * query itself is still bounded by the pool's own timeouts. Probes arriving meanwhile share the
 * check in flight instead of piling up queries on a database that is not answering.
 */
export function healthRoutes(db: Database, budgetMs = READINESS_BUDGET_MS) {
  const router = new Router();
  let inFlight: Promise<Readiness> | undefined;

  const check = (): Promise<Readiness> => {
    inFlight ??= schemaStatus(db)
      .then((status): Readiness => {
        if (status.tooNew !== undefined) return { ready: false, reason: 'database is newer than this release' };
        if (status.pending.length) return { ready: false, reason: 'migrations pending' };
        return { ready: true };
      }, (err: unknown): Readiness => ({ ready: false, reason: `database unreachable: ${(err as Error).message}` }))
      .finally(() => { inFlight = undefined; });
    return inFlight;
  };

  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<Readiness>((resolve) => {
      timer = setTimeout(() => resolve({ ready: false, reason: 'database unreachable: no answer within the readiness budget' }), budgetMs);
    });
    const result = await Promise.race([check(), late]).finally(() => clearTimeout(timer));
    if (result.ready) {
      ctx.body = { status: 'ready' };
      return;
    }
    if (result.reason.startsWith('database unreachable')) {
      ctx.state.log?.warn({ reason: result.reason }, 'readiness check failed');
      ctx.set('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
    }
    ctx.status = 503;
    // The body names the kind of problem, not the driver's message (the log has it).
    ctx.body = { status: 'not_ready', reason: result.reason.startsWith('database unreachable') ? 'database unreachable' : result.reason };
  });
  return router;
}
