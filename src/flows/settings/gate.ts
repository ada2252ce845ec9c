import type { Context, Next } from 'koa';
import type { AccountRow, AccountService } from '../../identity/accounts.ts';
import type { BrowserSessions } from '../../oidc/browser-session.ts';
import { csrfToken } from '../../http/csrf.ts';
import { errorMessage, type PageError } from '../../http/messages.ts';
import type { Views } from '../../http/views.ts';

/** What every settings router shares: the signed-in gate and the page renderer. */
export function settingsKit(deps: { views: Views; sessions: BrowserSessions; accounts: AccountService }) {
  const { views, sessions, accounts } = deps;

  function page(ctx: Context, status: number, name: string, data: Record<string, unknown>, error?: PageError) {
    // A wait message has already set 429 and Retry-After.
    ctx.status = ctx.response.get('Retry-After') ? 429 : status;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = views.render(name, { ...data, csrf: csrfToken(ctx), error: errorMessage(error) });
  }

  /** Loads the signed-in, active account or sends the browser to sign in. */
  async function signedIn(ctx: Context, next: Next) {
    const session = await sessions.current(ctx);
    const account = session ? await accounts.findById(session.accountId) : undefined;
    if (!session || !account || account.status !== 'active') {
      if (ctx.method !== 'GET') {
        return page(ctx, 401, 'errors/error', { title: 'Sign in again', text: 'Your session ended. Sign in again to change your settings.' });
      }
      ctx.status = 303;
      return ctx.redirect(`/account/login?next=${encodeURIComponent(ctx.path)}`);
    }
    ctx.state.account = account;
    ctx.state.sessionUid = session.uid;
    await next();
  }

  const account = (ctx: Context) => ctx.state.account as AccountRow;
  const nav = (ctx: Context, current: string) => ({ email: account(ctx).email, name: account(ctx).name, current });

  return { page, signedIn, account, nav };
}
