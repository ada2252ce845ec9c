import Router from '@koa/router';
import type { Context } from 'koa';
import type { FederatedLogin } from '../../federation/federated-login.ts';
import type { TrelloLinking } from '../../legacy-trello/linking.ts';
import type { GoogleClient } from '../../federation/google.ts';
import type { SecretBox } from '../../shared/crypto.ts';
import { messageFor } from '../../http/messages.ts';
import { requestMeta } from '../../http/request-meta.ts';
import type { Views } from '../../http/views.ts';
import { sealedCookie } from '../../http/sealed-cookie.ts';
import { pageRenderer } from '../../http/page.ts';
import type { LoginStrategy } from './strategy.ts';

/**
 * "Continue with Google": the strategy of a federated first factor (amr ["fed"]).
 *
 * 1. GET /interaction/:uid/google — state, nonce and PKCE verifier go into a cookie sealed with
 *    SECRET_KEY (HttpOnly, SameSite=Lax, ten minutes), then the browser goes upstream.
 * 2. GET /login/google/callback — the one redirect URI registered upstream. The engine's
 *    interaction cookie is scoped to /interaction/<uid>, so this only bounces the browser, with
 *    the same query, to …
 * 3. GET /interaction/:uid/google/callback — code exchanged (state, nonce, PKCE checked by
 *    openid-client), the account resolved (src/federation/federated-login.ts), and the factor
 *    reported to the completion service, which asks the decision point what follows.
 *
 * The checks stay in a sealed cookie rather than the flow record (decision 0026): they must be
 * bound to the browser that started (the `state` defends the callback against login CSRF,
 * RFC 9700 §4.7), and the callback address lies outside the interaction cookie's path, so a
 * cookie naming the interaction is needed there anyway.
 */
const COOKIE = 'lanyard.google';
const SEAL = 'google_login';

/**
 * `since` (seconds): set when the login re-authenticates someone already signed in here, or the
 * relying party sent max_age: Google's sign-in must be at least that recent, or its session
 * answered for a fresher login than it was.
 */
interface Pending { uid: string; state: string; nonce: string; verifier: string; since?: number }

/** Clock skew allowed between us and the upstream when checking `auth_time` (seconds). */
const AUTH_TIME_SKEW_SECONDS = 60;

export function googleStrategy(deps: {
  google: GoogleClient;
  federated: FederatedLogin;
  linking: TrelloLinking;
  box: SecretBox;
  views: Views;
  issuer: string;
  now: () => number;
}): LoginStrategy {
  const { google } = deps;
  const outside = new Router();

  const page = pageRenderer(deps.views);
  const problem = (ctx: Context, status: number, code: string, uid?: string) => page(ctx, status, 'login/federated-problem', { ...messageFor(code), uid });

  // Path "/": read at /login/google/callback and again inside the interaction.
  const pendingCookie = sealedCookie<Pending>(deps.box, deps.now, { name: COOKIE, ttlSeconds: 600 });
  const readPending = (ctx: Context) => pendingCookie.get(ctx, SEAL);

  outside.get('/login/google/callback', (ctx) => {
    const pending = readPending(ctx);
    if (!pending) return problem(ctx, 400, 'interaction.expired');
    ctx.status = 303;
    ctx.redirect(`/interaction/${encodeURIComponent(pending.uid)}/google/callback?${ctx.querystring}`);
  });

  return {
    name: 'google',
    methods: ['google'],
    outside,
    steps: [
      {
        method: 'get',
        path: '/google',
        async handle(ctx, it) {
          let start;
          try {
            start = await google.start({ maxAge: it.upstreamMaxAge });
          } catch (err) {
            ctx.state.log?.error({ err: { message: (err as Error).message } }, 'google discovery failed');
            return problem(ctx, 502, 'google.unavailable', it.uid);
          }
          const since = it.upstreamMaxAge !== undefined ? Math.floor(deps.now() / 1000) - it.upstreamMaxAge : undefined;
          pendingCookie.set(ctx, '/', SEAL, { uid: it.uid, state: start.state, nonce: start.nonce, verifier: start.verifier, ...(since ? { since } : {}) });
          ctx.status = 303;
          ctx.redirect(start.url);
        },
      },
      {
        method: 'get',
        path: '/google/callback',
        async handle(ctx, it) {
          if (typeof ctx.query.error === 'string') {
            ctx.state.log?.info({ error: ctx.query.error, description: ctx.query.error_description }, 'google answered with an error');
            return problem(ctx, 400, ctx.query.error === 'access_denied' ? 'google.cancelled' : 'google.failed', it.uid);
          }
          const checks = readPending(ctx);
          pendingCookie.clear(ctx, '/');
          // The login started in this interaction; openid-client checks the state, nonce and PKCE.
          if (!checks || checks.uid !== it.uid) return problem(ctx, 400, 'interaction.expired', it.uid);
          let claims;
          try {
            claims = await google.finish(new URL(`${deps.issuer}/login/google/callback?${ctx.querystring}`), checks);
          } catch (err) {
            ctx.state.log?.warn({ err: { message: (err as Error).message } }, 'google login refused');
            return problem(ctx, 400, 'google.failed', it.uid);
          }
          // A re-authentication needs a sign-in made for it, not Google's standing session; a
          // relying party's max_age, a sign-in no older than it.
          if (checks.since !== undefined && (claims.authTime === undefined || claims.authTime < checks.since - AUTH_TIME_SKEW_SECONDS)) {
            ctx.state.log?.info({ authTime: claims.authTime, maxAge: it.upstreamMaxAge }, 'google sign-in older than this login accepts');
            return problem(ctx, 401, it.upstreamMaxAge ? 'google.not_recent' : 'google.not_fresh', it.uid);
          }
          const meta = requestMeta(ctx, it.clientId);
          const result = await deps.federated.resolveGoogle(claims, meta);
          if (!result.ok) {
            if (result.problem === 'google.email_retired') {
              await deps.linking.notifyRetiredUse(result.email, result.retiredFor, meta);
              return problem(ctx, 200, 'google.email_retired', it.uid);
            }
            return problem(ctx, 409, result.problem, it.uid);
          }
          ctx.state.log?.info({ accountId: result.account.id, how: result.how }, 'google login');
          // RFC 8176 has no value for a federated login; "fed" is the common one.
          return { account: result.account, method: 'google', amr: ['fed'], via: 'google' };
        },
      },
    ],
  };
}
