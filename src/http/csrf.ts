import type { Context, Middleware } from 'koa';
import { constantTimeEqual, hmac } from '../shared/crypto.ts';
import { randomSecret } from '../shared/ids.ts';
import { AppError } from '../shared/errors.ts';

/**
 * CSRF protection for every form of ours (OWASP "signed double-submit cookie"): a random value in
 * an HttpOnly, SameSite=Lax cookie, and in each form a token that is its HMAC under a server key.
 * A cross-site page can neither read the cookie nor compute the token. Unsafe methods without a
 * matching `_csrf` field (or `X-CSRF-Token` header) are refused before any handler runs.
 */
export const CSRF_COOKIE = 'lanyard.csrf';
/** With an https ISSUER the cookie is `__Host-` prefixed: Secure, path /, no Domain — a sibling host cannot plant one (RFC 6265bis §4.1.3.2). */
const cookieName = (ctx: Context) => (ctx.secure ? `__Host-${CSRF_COOKIE}` : CSRF_COOKIE);
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

export function csrfToken(ctx: Context): string {
  return (ctx.state.csrfToken as (() => string) | undefined)?.() ?? '';
}

/**
 * `queryToken`: the token may also come as `?_csrf=` in the URL, for a route that must decide
 * before reading its body (a multipart upload). `Referrer-Policy: no-referrer` keeps the URL from
 * other sites, and the access log records paths without their query.
 */
export function csrfProtection(key: Buffer, options: { queryToken?: boolean } = {}): Middleware {
  return async (ctx, next) => {
    let secret = ctx.cookies.get(cookieName(ctx));
    ctx.state.csrfToken = () => {
      if (!secret) {
        secret = randomSecret(24);
        ctx.cookies.set(cookieName(ctx), secret, { httpOnly: true, sameSite: 'lax', secure: ctx.secure, path: '/', signed: false });
      }
      return hmac(key, secret);
    };
    if (!SAFE.has(ctx.method)) {
      const body = ctx.request.body as Record<string, unknown> | undefined;
      const query = options.queryToken ? ctx.query._csrf : undefined;
      const sent = typeof body?._csrf === 'string' ? body._csrf : typeof query === 'string' ? query : ctx.get('x-csrf-token');
      if (!secret || !sent || !constantTimeEqual(sent, hmac(key, secret))) throw new AppError('request.csrf', 403);
    }
    await next();
  };
}
