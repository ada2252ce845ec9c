import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import multer from '@koa/multer';
import { MAX_AVATAR_BYTES, type AvatarService } from '../../identity/avatars.ts';
import type { BrowserSessions } from '../../oidc/browser-session.ts';
import { AppError } from '../../shared/errors.ts';
import { csrfProtection } from '../../http/csrf.ts';
import { identityEncodingOnly } from '../../http/input-guards.ts';

/**
 * POST /account/avatar (multipart, field `picture`) and POST /account/avatar/remove.
 *
 * Nothing of the body is read before the request has proved itself: the CSRF token travels in
 * the form's action URL (`?_csrf=…`, which works without JavaScript) and the session in its
 * cookie, so an anonymous or cross-site upload is refused on its headers alone. Then the file is
 * streamed into memory with multer's limits (at most 5 MB, one file): past the limit the stream is
 * cut off and the person is sent back with a message. The avatar service re-encodes the picture;
 * the answer is a redirect back to the profile page with the outcome in the query.
 */
export function avatarUploadRoutes(deps: { avatars: AvatarService; sessions: BrowserSessions; csrfKey: Buffer }) {
  const router = new Router({ prefix: '/account/avatar' });
  const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: MAX_AVATAR_BYTES, files: 1, fields: 1, parts: 2, fieldSize: 1024, headerPairs: 20 } });

  const refuseEarly = (ctx: Context) => {
    // The body stays unread: closing the connection stops the client sending the rest of it.
    ctx.set('Connection', 'close');
  };

  const csrfFirst: Middleware = async (ctx, next) => {
    try {
      await csrfProtection(deps.csrfKey, { queryToken: true })(ctx, next);
    } catch (err) {
      if ((err as AppError).code === 'request.csrf') refuseEarly(ctx);
      throw err;
    }
  };

  const signedIn: Middleware = async (ctx, next) => {
    const session = await deps.sessions.current(ctx);
    if (!session) {
      refuseEarly(ctx);
      throw new AppError('api.unauthenticated', 401);
    }
    ctx.state.accountId = session.accountId;
    await next();
  };

  /** multer's and busboy's errors are the client's malformed body, never a server failure. */
  const readPicture: Middleware = async (ctx: Context, next: Next) => {
    try {
      await upload.single('picture')(ctx, async () => {});
    } catch (err) {
      if ((err as { code?: string }).code === 'LIMIT_FILE_SIZE') {
        refuseEarly(ctx);
        ctx.status = 303;
        return ctx.redirect('/account/profile?avatar=avatar.too_large');
      }
      refuseEarly(ctx);
      throw new AppError('request.invalid_body', 400, { cause: err });
    }
    await next();
  };

  router.post('/', identityEncodingOnly(), csrfFirst, signedIn, readPicture, async (ctx) => {
    const file = ctx.request.file;
    // No file chosen (or an empty one): say so, rather than that the picture can't be used.
    const result = file && file.size > 0 ? await deps.avatars.upload(ctx.state.accountId as string, file.buffer) : { ok: false as const, problem: 'avatar.missing' as const };
    ctx.status = 303;
    ctx.redirect(`/account/profile?avatar=${result.ok ? 'saved' : result.problem}`);
  });

  // No body to read: the token is in the URL.
  router.post('/remove', csrfFirst, signedIn, async (ctx) => {
    await deps.avatars.remove(ctx.state.accountId as string);
    ctx.status = 303;
    ctx.redirect('/account/profile?avatar=removed');
  });

  return router;
}
