import Router from '@koa/router';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '../shared/crypto.ts';

/** The stylesheet, read once at start-up and served with a validator so browsers revalidate cheaply. */
export function staticRoutes(publicDir: string) {
  const css = readFileSync(join(publicDir, 'lanyard.css'));
  const etag = `"${sha256(css.toString('utf8')).slice(0, 16)}"`;
  const router = new Router();
  router.get('/static/lanyard.css', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.set('ETag', etag);
    if (ctx.get('if-none-match') === etag) {
      ctx.status = 304;
      return;
    }
    ctx.type = 'text/css';
    ctx.body = css;
  });
  return router;
}
