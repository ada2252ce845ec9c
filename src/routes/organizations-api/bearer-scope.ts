import type { Context, Middleware } from 'koa';
import type { Bearer, BrowserSessions } from '../../oidc/browser-session.ts';
import { apiError } from './errors.ts';

/** Who acts through the management API: the token's account (the admin), by way of the token's client. */
export interface ApiActor {
  accountId: string;
  clientId: string;
  /** Whether the token's sign-in is recent enough for an irreversible change (`requireRecentLogin`). */
  recentLogin: Extract<Bearer, { ok: true }>['recentLogin'];
}

const REALM = 'lanyard';

/**
 * Admits a request only with an `Authorization: Bearer` access token of this provider (RFC 6750
 * §2.1) that holds `scope`. The token is resolved as the other bearer APIs resolve it
 * (`BrowserSessions.bearer`): opaque, looked up in the engine's store, not expired, and its use
 * allowed by the decision point now (stage "api" with the token's provenance — a token from a
 * one-factor sign-in stops working once two-step becomes required; a deactivated account's
 * tokens stop at once).
 *
 * Cookies are never read: a browser session does not authorize this API, so a page on another
 * site cannot make a signed-in admin's browser call it (no CSRF surface), and nothing but the
 * token decides who acts.
 *
 * - no token: 401 with a challenge that names no error (RFC 6750 §3.1: the request had no
 *   authentication information);
 * - a token that is unknown, expired, or refused by the decision point: 401 `invalid_token`;
 * - a good token without `scope`: 403 `insufficient_scope`, naming the scope needed.
 */
export function bearerWithScope(sessions: Pick<BrowserSessions, 'bearer'>, scope: string): Middleware {
  return async (ctx, next) => {
    const bearer = await sessions.bearer(ctx);
    if (!bearer) {
      const sent = /^bearer\s/i.test(ctx.get('authorization'));
      throw apiError('invalid_token', {}, sent ? `Bearer realm="${REALM}", error="invalid_token"` : `Bearer realm="${REALM}", scope="${scope}"`);
    }
    if (!bearer.ok) {
      // The reason (a policy code) tells the client whether signing in again can help.
      throw apiError('invalid_token', { reason: bearer.reason }, `Bearer realm="${REALM}", error="invalid_token"`);
    }
    if (!bearer.scopes.has(scope)) {
      throw apiError('insufficient_scope', { scope }, `Bearer realm="${REALM}", error="insufficient_scope", scope="${scope}"`);
    }
    ctx.state.apiActor = { accountId: bearer.accountId, clientId: bearer.clientId, recentLogin: bearer.recentLogin } satisfies ApiActor;
    await next();
  };
}

/**
 * For the irreversible calls (deleting an organization, releasing managed accounts): the token's
 * sign-in must be recent and at the account's level, as the console asks of every change
 * (decision 0027). Otherwise 401 with RFC 9470's step-up challenge: `insufficient_user_authentication`
 * with the `max_age` (and the `acr_values`) a new authorization request should carry.
 */
export function requireRecentLogin(ctx: Context): void {
  const recentLogin = actorOf(ctx).recentLogin();
  if (recentLogin.ok) return;
  const acr = recentLogin.acr ? `, acr_values="${recentLogin.acr}"` : ''; // only above one factor
  throw apiError('insufficient_user_authentication', { max_age: recentLogin.maxAgeSeconds, ...(recentLogin.acr ? { acr_values: recentLogin.acr } : {}) },
    `Bearer realm="${REALM}", error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age=${recentLogin.maxAgeSeconds}${acr}`);
}

/** The actor `bearerWithScope` admitted. */
export function actorOf(ctx: Context): ApiActor {
  const actor = ctx.state.apiActor as ApiActor | undefined;
  if (!actor) throw new Error('the management API route ran without bearerWithScope');
  return actor;
}
