import Router from '@koa/router';
import type { Context, Next } from 'koa';
import multer from '@koa/multer';
import { MAX_AVATAR_BYTES, type AvatarService } from '../../identity/avatars.ts';
import type { BrowserSessions } from '../../oidc/browser-session.ts';
import { AppError } from '../../shared/errors.ts';
import { csrfProtection } from '../../http/csrf.ts';

/**
 * POST /account/avatar (multipart, field `picture`) and POST /account/avatar/remove. The file is
 * held in memory (at most 5 MB, one file, nothing else) and handed to the avatar service, which
 * re-encodes it; the answer is a redirect back to the profile page with the outcome in the query.
 */
export function avatarUploadRoutes(deps: { avatars: AvatarService; sessions: BrowserSessions; csrfKey: Buffer }) {
  const router = new Router({ prefix: '/account/avatar' });
  const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: MAX_AVATAR_BYTES, files: 1, fields: 2, parts: 3 } });

  const signedIn = async (ctx: Context) => {
    const session = await deps.sessions.current(ctx);
    if (!session) throw new AppError('api.unauthenticated', 401);
    return session.accountId;
  };

  const tooLarge = async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (err) {
      if ((err as { code?: string }).code === 'LIMIT_FILE_SIZE') {
        ctx.status = 303;
        return ctx.redirect('/account/profile?avatar=avatar.too_large');
      }
      throw err;
    }
  };

  router.post('/', tooLarge, upload.single('picture'), csrfProtection(deps.csrfKey), async (ctx) => {
    const accountId = await signedIn(ctx);
    const file = ctx.request.file;
    const result = file ? await deps.avatars.upload(accountId, file.buffer) : { ok: false as const, problem: 'avatar.invalid' as const };
    ctx.status = 303;
    ctx.redirect(`/account/profile?avatar=${result.ok ? 'saved' : result.problem}`);
  });

  router.post('/remove', upload.fields([]), csrfProtection(deps.csrfKey), async (ctx) => {
    await deps.avatars.remove(await signedIn(ctx));
    ctx.status = 303;
    ctx.redirect('/account/profile?avatar=removed');
  });

  return router;
}
