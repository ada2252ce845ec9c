import type { Context, Next } from 'koa';
import type { AccountRow, AccountService } from '../../identity/accounts.ts';
import type { BrowserSessions, SignedInSession, Standing } from '../../oidc/browser-session.ts';
import type { Views } from '../../http/views.ts';
import { pageRenderer } from '../../http/page.ts';

/**
 * Where signing in from the settings or the organizations console may return to: our own
 * settings and console pages only — a path of plain segments (letters, digits, `_`, `-`: the
 * console's ids are mixed case), never another origin (no `//`, no dots, no query), so `next`
 * cannot become an open redirect. At most 512 characters: a longer path is no page of ours, and
 * carried into a Location header it could exceed what clients parse (16 KB in Node).
 */
const RETURN_PATH = /^\/(account|admin)(\/[A-Za-z0-9_-]+)*$/;

/** `path` when signing in may return there, else the settings' first page. */
export const returnPath = (path: string): string => (path.length <= 512 && RETURN_PATH.test(path) ? path : '/account');

/** What every settings router shares: the signed-in gate and the page renderer. */
export function settingsKit(deps: { views: Views; sessions: BrowserSessions; accounts: AccountService }) {
  const { views, sessions, accounts } = deps;

  const page = pageRenderer(views);

  /**
   * Loads the signed-in account or sends the browser to sign in. The session must still meet
   * the account's policy (the decision point's `session` stage, as for a relying party reusing
   * it at /auth): a deactivated account, or two-step required since a one-factor login, logs in
   * again — at the level the account now requires — before any settings or console page.
   */
  async function signedIn(ctx: Context, next: Next) {
    const standing = await sessions.standing(ctx);
    if (!standing.ok) {
      if (standing.session) ctx.state.log?.info({ accountId: standing.session.accountId, reason: standing.reason }, 'session no longer meets the account policy');
      if (ctx.method !== 'GET') {
        return page(ctx, 401, 'errors/error', { title: 'Sign in again', text: 'Your session ended. Sign in again to change your settings.' });
      }
      ctx.status = 303;
      // A session that is still there but falls short asks for a new login, not the old session back.
      return ctx.redirect(`/account/login?${standing.session ? 'reauth=1&' : ''}next=${encodeURIComponent(returnPath(ctx.path))}`);
    }
    ctx.state.account = standing.account;
    ctx.state.sessionUid = standing.session.uid;
    ctx.state.standing = standing;
    // How this session's login was made, for the decision point's `reauthenticate` (privileged session).
    ctx.state.login = standing.session.login;
    await next();
  }

  /**
   * After `signedIn`: a change that needs a recent login (the organization console's actions)
   * proceeds only when the decision point's `reauthenticate` stage allows it; otherwise the
   * page says so and offers logging in again, back to `returnTo`.
   */
  function privileged(returnTo: (ctx: Context) => string) {
    return async (ctx: Context, next: Next) => {
      if (sessions.privileged(ctx.state.standing as Extract<Standing, { ok: true }>)) return next();
      ctx.state.log?.info({ accountId: (ctx.state.account as AccountRow).id, path: ctx.path }, 'privileged change refused: no recent login');
      return page(ctx, 403, 'errors/reauthenticate', {
        title: 'Confirm it’s you',
        text: 'This change needs a recent login. Log in again, then make the change.',
        signInAgain: `/account/login?reauth=1&next=${encodeURIComponent(returnPath(returnTo(ctx)))}`,
      });
    };
  }

  const account = (ctx: Context) => ctx.state.account as AccountRow;
  const nav = (ctx: Context, current: string) => ({ email: account(ctx).email, name: account(ctx).name, current });
  const login = (ctx: Context) => ctx.state.login as SignedInSession['login'];

  return { page, signedIn, privileged, account, nav, login };
}
