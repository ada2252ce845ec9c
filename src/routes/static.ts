import Router from '@koa/router';
import type { Context } from 'koa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';

/**
 * The few files in public/, read once at start-up and served with a validator so browsers
 * revalidate cheaply. /favicon.ico is where browsers look without being told: serving it keeps
 * every page view from logging a refused request.
 */
const FILES: { path: string; file: string; type: string; maxAge: number }[] = [
  { path: '/static/lanyard.css', file: 'lanyard.css', type: 'text/css', maxAge: 3600 },
  // The console's search as you type (progressive enhancement; the CSP allows only scripts from here).
  { path: '/static/admin-accounts.js', file: 'admin-accounts.js', type: 'text/javascript', maxAge: 3600 },
  // The SAML assertion consumer's interim page posts itself on (src/flows/login/connector.ts).
  { path: '/static/sso-continue.js', file: 'sso-continue.js', type: 'text/javascript', maxAge: 3600 },
  { path: '/static/favicon.svg', file: 'favicon.svg', type: 'image/svg+xml', maxAge: 86_400 },
  { path: '/favicon.ico', file: 'favicon.ico', type: 'image/x-icon', maxAge: 86_400 },
];

export const STATIC_PATHS = FILES.map((f) => f.path);

export function staticRoutes(publicDir: string) {
  const router = new Router();
  for (const { path, file, type, maxAge } of FILES) {
    const body = readFileSync(join(publicDir, file));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`;
    router.get(path, (ctx: Context) => {
      ctx.set('Cache-Control', `public, max-age=${maxAge}`);
      ctx.set('ETag', etag);
      if (ctx.get('if-none-match') === etag) {
        ctx.status = 304;
        return;
      }
      ctx.type = type;
      ctx.body = body;
    });
  }
  return router;
}
