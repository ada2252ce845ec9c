import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountRow, AccountService } from '../identity/accounts.ts';
import { MAX_PAGE, type SecurityEvents } from '../identity/security-events.ts';
import type { BrowserSessions } from '../oidc/browser-session.ts';
import type { Interactions } from '../oidc/interactions.ts';
import { AppError } from '../shared/errors.ts';

/**
 * GET /api/security-events (docs/flows/security-activity.md): the signed-in person's audit trail,
 * newest first, `limit` (1–100, default 20) per page, `cursor` from the previous page's `next`.
 * Readable with the browser session, or a bearer access token of a first-party client (our own
 * products); a third-party app never sees where and when someone logged in.
 */
export function securityApiRoutes(deps: { accounts: AccountService; events: SecurityEvents; sessions: BrowserSessions; interactions: Interactions }) {
  const { accounts, events, sessions, interactions } = deps;
  const router = new Router();

  /**
   * The account asking: a first-party bearer token's, when the decision point still allows the
   * token's use (stage "api": active account, and its login still meets what the account
   * requires), else the browser session's active account.
   */
  async function account(ctx: Context): Promise<AccountRow | undefined> {
    const bearer = await sessions.bearer(ctx);
    if (bearer) {
      if (!bearer.ok) {
        // RFC 6750 §3.1: the token is no longer good for this account.
        ctx.set('WWW-Authenticate', 'Bearer realm="lanyard", error="invalid_token"');
        return undefined;
      }
      return (await interactions.client(bearer.clientId))?.firstParty ? bearer.account : undefined;
    }
    const session = await sessions.current(ctx);
    const found = session ? await accounts.findById(session.accountId) : undefined;
    return found?.status === 'active' ? found : undefined;
  }

  router.get('/api/security-events', async (ctx) => {
    const found = await account(ctx);
    if (!found) throw new AppError('api.unauthenticated', 401);
    const limit = typeof ctx.query.limit === 'string' ? Number.parseInt(ctx.query.limit, 10) : undefined;
    const cursor = typeof ctx.query.cursor === 'string' ? ctx.query.cursor : undefined;
    if ((limit !== undefined && !(limit >= 1 && limit <= MAX_PAGE)) || (cursor !== undefined && !/^\d{1,18}$/.test(cursor))) {
      throw new AppError('api.invalid_paging', 400);
    }
    const page = await events.page(found.id, { limit, cursor });
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { events: page.events, next: page.next ?? null };
  });

  return router;
}
