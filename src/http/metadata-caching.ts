import type { Middleware } from 'koa';

/**
 * Explicit caching for the two documents relying parties fetch over and over: the discovery
 * document (OIDC Discovery 1.0 §4) and the JWKS (RFC 7517). The engine sends neither with
 * Cache-Control, leaving any cache in front to guess. Both are public and the same for every
 * caller (their URLs come from ISSUER, never from the request's Host).
 *
 * The JWKS may be kept no longer than a new signing key is published before it starts signing
 * (KEY_ACTIVATION_DELAY_SECONDS), so a relying party that cached it still knows the key of the
 * next token it sees; with no delay, caches must revalidate.
 */
export function metadataCaching(options: { discoveryPath: string; jwksPath: string; keyActivationDelaySeconds: number }): Middleware {
  const jwksMaxAge = Math.min(300, Math.floor(options.keyActivationDelaySeconds / 2));
  return async (ctx, next) => {
    // Every other path passes straight through (no await of ours around the engine's answer).
    const path = ctx.path;
    if (path !== options.discoveryPath && path !== options.jwksPath) return next();
    await next();
    if (ctx.status !== 200 || ctx.method !== 'GET' && ctx.method !== 'HEAD') return;
    if (path === options.discoveryPath) ctx.set('Cache-Control', 'public, max-age=300');
    else ctx.set('Cache-Control', jwksMaxAge > 0 ? `public, max-age=${jwksMaxAge}` : 'no-cache');
  };
}
