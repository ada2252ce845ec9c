import type Router from '@koa/router';
import type { Middleware } from 'koa';

/**
 * The page a form's POST address belongs to: the nearest address above it that `router` serves
 * with GET (/account/security/two-step/disable → /account/security, /account/trello/link →
 * /account/trello, /interaction/:uid/identify → /interaction/:uid). Derived from the route table,
 * so a new form route needs no declaration of its own.
 */
export function formPageOf(router: Router, path: string): string | undefined {
  const segments = path.split('/').filter(Boolean);
  for (let n = segments.length - 1; n >= 1; n -= 1) {
    const candidate = `/${segments.slice(0, n).join('/')}`;
    if (router.match(candidate, 'GET').route) return candidate;
  }
  return undefined;
}

/**
 * Replaces the router's `allowedMethods()` for our HTML forms. A GET on an address that only
 * takes a form's POST (a reload after submitting, the back button, a copied link) is a person
 * looking for the page, not a protocol error: 303 to the page the form belongs to. Any other
 * method the route does not take gets the usual 405 with Allow (RFC 9110 §15.5.6).
 */
export function formPageRedirects(router: Router, options: { page?: string } = {}): Middleware {
  const allowed = router.allowedMethods() as Middleware;
  return async (ctx, next) => {
    if ((ctx.method === 'GET' || ctx.method === 'HEAD') && router.match(ctx.path, 'POST').route) {
      // `page`: for a router whose forms sit on another router's page (the picture upload).
      const page = options.page ?? formPageOf(router, ctx.path);
      if (page) {
        ctx.status = 303;
        ctx.redirect(page);
        return;
      }
    }
    return allowed(ctx, next);
  };
}
