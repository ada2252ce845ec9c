import type { Context, Middleware } from 'koa';
import { AppError } from '../shared/errors.ts';
import { containsNul } from '../shared/nul.ts';

/**
 * Edge checks for input no form, API or protocol request of ours can legitimately carry. Each
 * refusal is a 4xx AppError, which the error handler logs once at warn level.
 */

/**
 * Refuses a request body with a content coding other than identity (RFC 9110 §8.4.1: a server
 * answers 415 to a coding it does not accept). Browsers never compress what they send; decoding
 * would only open the way to decompression bombs and to zlib errors on bodies that lie about it.
 */
export function identityEncodingOnly(): Middleware {
  return async (ctx, next) => {
    const coding = ctx.get('content-encoding').trim().toLowerCase();
    if (coding !== '' && coding !== 'identity') throw new AppError('request.unsupported_encoding', 415);
    await next();
  };
}

/** Refuses a parsed body holding NUL anywhere (PostgreSQL text cannot store it: error 22021). */
export function refuseNulInBody(): Middleware {
  return async (ctx, next) => {
    if (containsNul(ctx.request.body)) throw new AppError('request.invalid_characters', 400);
    await next();
  };
}

/** A NUL in the path or query, percent-encoded (a raw one never gets past Node's HTTP parser). */
export function urlHasNul(ctx: Context): boolean {
  return /%00/.test(ctx.path) || /%00|\0/.test(ctx.querystring);
}

/**
 * Refuses a NUL in the path or query before any route or the engine sees it. On oidc-provider's
 * endpoints the refusal is the protocol's `invalid_request` (RFC 6749 §4.1.2.1, §5.2), shown as a
 * page or JSON and never redirected: the client and its redirect_uri are not verified yet, so
 * nothing may be sent to them (OIDC Core §3.1.2.6).
 */
export function refuseNulInUrl(ownPrefixes: readonly string[]): Middleware {
  // Synchronous, as validHostOnly: koa-compose turns the throw into a rejection.
  return (ctx, next) => {
    if (urlHasNul(ctx)) {
      const own = ownPrefixes.some((prefix) => ctx.path.startsWith(prefix));
      throw new AppError('request.invalid_characters', 400, own ? {} : { details: { oauthError: 'invalid_request' } });
    }
    return next();
  };
}

/**
 * Refuses a request whose Host header is not a valid host: RFC 9112 §3.2 says such a request
 * gets a 400. (URLs are built from ISSUER, never from Host; this only answers the malformed
 * request as the protocol asks.)
 */
export function validHostOnly(): Middleware {
  // Synchronous (it awaits nothing): koa-compose turns the throw into a rejection, and the
  // protocol's hot path saves a promise per request (issue 14).
  return (ctx, next) => {
    // The header as sent: `ctx.host` answers ISSUER's host whatever was sent (src/http/issuer-origin.ts).
    const host = ctx.req.headers.host;
    // HTTP/1.0 has no Host requirement (RFC 9112 §3.2 binds 1.1): a health checker that speaks
    // 1.0 without one (HAProxy's plain `option httpchk`, old monitors) is answered, not refused.
    if (host === undefined && ctx.req.httpVersion === '1.0') return next();
    if (!URL.canParse(`http://${host ?? ''}/`)) throw new AppError('request.invalid_host', 400);
    return next();
  };
}
