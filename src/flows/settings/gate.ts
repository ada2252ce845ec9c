import type { Context, Next } from 'koa';
import type { AccountRow, AccountService } from '../../identity/accounts.ts';
import type { BrowserSessions, SignedInSession } from '../../oidc/browser-session.ts';
import type { Views } from '../../http/views.ts';
import { pageRenderer } from '../../http/page.ts';

/** What every settings router shares: the signed-in gate and the page renderer. */
export function settingsKit(deps: { views: Views; sessions: BrowserSessions; accounts: AccountService }) {
  const { views, sessions, accounts } = deps;

  const page = pageRenderer(views);

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
    // How this session's login was made, for the decision point's `reauthenticate` (privileged session).
    ctx.state.login = session.login;
    await next();
  }

  const account = (ctx: Context) => ctx.state.account as AccountRow;
  const nav = (ctx: Context, current: string) => ({ email: account(ctx).email, name: account(ctx).name, current });
  const login = (ctx: Context) => ctx.state.login as SignedInSession['login'];

  return { page, signedIn, account, nav, login };
}
