import Router from '@koa/router';
import type { Database } from '../persistence/db.ts';
import { schemaStatus } from '../persistence/migrate.ts';

/**
 * /healthz: the process is up (liveness). /readyz: the database answers and every migration this
 * release knows is applied (readiness) — a load balancer sends traffic only then.
 */
export function healthRoutes(db: Database) {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    try {
      const status = await schemaStatus(db);
      const ready = status.pending.length === 0 && status.tooNew === undefined;
      ctx.status = ready ? 200 : 503;
      ctx.body = ready ? { status: 'ready' } : { status: 'not_ready', reason: status.tooNew ? 'database is newer than this release' : 'migrations pending' };
    } catch (err) {
      ctx.state.log?.warn({ err: { message: (err as Error).message } }, 'readiness check failed');
      ctx.status = 503;
      ctx.body = { status: 'not_ready', reason: 'database unreachable' };
    }
  });
  return router;
}
