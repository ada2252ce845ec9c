import type Koa from 'koa';

/**
 * Every absolute URL this server writes (discovery, redirects, links in pages) and the Secure
 * flag of its cookies derive from Koa's `request.protocol`, `host` and `origin`, which by default
 * follow the request's Host and, behind a trusted proxy, X-Forwarded-Host / X-Forwarded-Proto —
 * headers any client can write. A request naming another host would then be answered with
 * endpoints on that host (a poisoned discovery document that a cache may keep), and a request
 * arriving without X-Forwarded-Proto would get cookies without Secure.
 *
 * So the origin is pinned to ISSUER on the application's request prototype (per application,
 * never global): whatever Host a request names, it is answered with the issuer's URLs, and with
 * an https issuer `ctx.secure` is always true. The client's address is the one Koa derives from
 * X-Forwarded-For with `maxIpsCount` trusted hops (see `trustProxyHops`).
 */
export function pinOriginToIssuer(app: Pick<Koa, 'request'>, issuer: string): void {
  const url = new URL(issuer);
  const protocol = url.protocol.slice(0, -1);
  const fixed = (value: string | boolean) => ({ get: () => value, configurable: true, enumerable: true });
  Object.defineProperties(app.request, {
    protocol: fixed(protocol),
    secure: fixed(protocol === 'https'),
    host: fixed(url.host),
    hostname: fixed(url.hostname),
    origin: fixed(url.origin),
  });
}

/**
 * Koa's proxy settings for `hops` trusted reverse proxies: X-Forwarded-For is read only when
 * there is a proxy, and only its rightmost `hops` entries count — the address the outermost
 * trusted proxy saw is the leftmost of those. Entries further left were written by the client.
 */
export function trustProxyHops(app: Pick<Koa, 'proxy' | 'maxIpsCount'>, hops: number): void {
  app.proxy = hops > 0;
  app.maxIpsCount = hops;
}
