import Router from '@koa/router';
import type { Context } from 'koa';
import type { PasswordResetService } from '../../identity/password-reset.ts';
import { normalizeEmail } from '../../identity/email-address.ts';
import type { Background } from '../../shared/background.ts';
import { waitMessage } from '../../http/messages.ts';
import { requestMeta } from '../../http/request-meta.ts';
import type { Throttle } from '../../identity/throttle.ts';
import type { Views } from '../../http/views.ts';
import { pageRenderer } from '../../http/page.ts';
import { parseForm } from '../../http/validate.ts';
import { forgotInput, resetInput } from './schema.ts';

/**
 * Password reset pages (docs/flows/password-reset.md). The request page answers the same way
 * whether or not the address has an account, and in the same time: the lookup and the email run
 * in the background, after the response. Requests are throttled per address typed and per client
 * address; a completed reset proves the owner and clears the login throttle of that address.
 */
export function recoveryRoutes(deps: { resets: PasswordResetService; views: Views; background: Background; throttle: Throttle; minLength: number }) {
  const { resets, views, background } = deps;
  const router = new Router({ prefix: '/password' });

  const page = pageRenderer(views, { minLength: deps.minLength });

  router.get('/forgot', (ctx) => page(ctx, 200, 'recovery/forgot', { title: 'Reset your password', email: '' }));

  router.post('/forgot', async (ctx) => {
    const input = parseForm(ctx, forgotInput);
    const email = normalizeEmail(input.email);
    if (!email) return page(ctx, 400, 'recovery/forgot', { title: 'Reset your password', email: input.email }, 'login.invalid_email');
    const gate = await deps.throttle.hit('reset', email, ctx.ip);
    if (!gate.ok) return page(ctx, 429, 'recovery/forgot', { title: 'Reset your password', email }, waitMessage(ctx, gate.retryAfterSeconds));
    background.run('password reset request', () => resets.request(email));
    page(ctx, 200, 'recovery/sent', { title: 'Check your email', email });
  });

  router.get('/reset', async (ctx) => {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    const account = await resets.check(token);
    if (!account) return page(ctx, 400, 'recovery/invalid', { title: 'This link can’t be used' });
    page(ctx, 200, 'recovery/reset', { title: 'Choose a new password', token, email: account.email });
  });

  router.post('/reset', async (ctx) => {
    const input = parseForm(ctx, resetInput);
    const result = await resets.reset(input.token, input.password, requestMeta(ctx));
    if (result.ok) {
      await deps.throttle.succeeded('password', result.email);
      return page(ctx, 200, 'recovery/done', { title: 'Password changed' });
    }
    if (result.problem === 'reset.link_invalid') return page(ctx, 400, 'recovery/invalid', { title: 'This link can’t be used' });
    const account = await resets.check(input.token);
    page(ctx, 400, 'recovery/reset', { title: 'Choose a new password', token: input.token, email: account?.email ?? '' }, result.problem);
  });

  return router;
}
