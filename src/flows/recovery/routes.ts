import Router from '@koa/router';
import type { Context } from 'koa';
import type { PasswordResetService } from '../../identity/password-reset.ts';
import { normalizeEmail } from '../../identity/email-address.ts';
import type { Background } from '../../shared/background.ts';
import { messageFor, waitMessage, type PageError } from '../../http/messages.ts';
import { requestMeta } from '../../http/request-meta.ts';
import type { Throttle } from '../../identity/throttle.ts';
import type { Views } from '../../http/views.ts';
import { pageRenderer } from '../../http/page.ts';
import { parseForm } from '../../http/validate.ts';
import { forgotInput, resetInput } from './schema.ts';
import { flashMessages } from '../../http/flash.ts';
import type { DeviceCookies } from '../../http/device-cookie.ts';
import type { TrelloLinking } from '../../legacy-trello/linking.ts';
import { unlessBusy } from '../busy.ts';

/**
 * Password reset pages (docs/flows/password-reset.md). The request page answers the same way
 * whether or not the address has an account, and in the same time: the lookup and the email run
 * in the background, after the response. A completed reset proves the owner and clears the login
 * throttle of that address.
 *
 * Requests are counted per address typed and per client address, but only the client address's
 * counter refuses a request (429). The address's counter decides whether another mail goes out:
 * a stranger asking for resets of someone's address delays the next mail at most
 * THROTTLE_MAX_DELAY_SECONDS, and each mail it did send went to the owner with a link that is
 * valid for longer than that (PASSWORD_RESET_TTL ≥ the ceiling, checked at start-up) — so nobody
 * can keep the owner from resetting. A browser that signed in with the address before has an
 * allowance of its own (device cookies).
 */
export function recoveryRoutes(deps: { resets: PasswordResetService; views: Views; background: Background; throttle: Throttle; devices: DeviceCookies; linking: Pick<TrelloLinking, 'findRetired' | 'notifyRetiredUse'>; minLength: number }) {
  const { resets, views, background } = deps;
  const router = new Router({ prefix: '/password' });

  const page = pageRenderer(views, { minLength: deps.minLength });
  // "Check your email" is a page of its own (Post/Redirect/Get): a reload shows it again instead
  // of asking for another link, which replaced the first one — the mail already opened then
  // said "This link can't be used". The address waits in a signed cookie for a minute.
  const sent = flashMessages({ name: 'lanyard.sent', path: '/password' });

  // From the password page: the address already typed there, and the way back to that login
  // (both only shown: nothing is looked up or sent before the form is posted).
  router.get('/forgot', (ctx) => {
    const from = forgotInput.safeParse({ email: typeof ctx.query.email === 'string' ? ctx.query.email : '', back: typeof ctx.query.back === 'string' ? ctx.query.back : undefined });
    const { email, back } = from.success ? from.data : { email: '', back: undefined };
    return page(ctx, 200, 'recovery/forgot', { title: 'Reset your password', email, back });
  });

  router.post('/forgot', async (ctx) => {
    const input = parseForm(ctx, forgotInput);
    const email = normalizeEmail(input.email);
    const back = input.back;
    if (!email) return page(ctx, 400, 'recovery/forgot', { title: 'Reset your password', email: input.email, back }, 'login.invalid_email');
    const gate = await deps.throttle.hit('reset', email, ctx.ip, deps.devices.known(ctx, email));
    if (!gate.ok && gate.by === 'address') return page(ctx, 429, 'recovery/forgot', { title: 'Reset your password', email, back }, waitMessage(ctx, gate.retryAfterSeconds));
    // A domain whose organization signs its people in through its own identity provider: no
    // password to reset here, for any address on it (decided per domain, so it tells nothing
    // about accounts) — the page says where to sign in instead, and nothing is mailed.
    const company = await resets.companySignIn(email);
    if (company) {
      ctx.state.log?.info({ connector: company.connector }, 'password reset refused: the domain signs in through its company identity provider');
      return page(ctx, 200, 'recovery/company', { title: `Sign in through ${company.manager}`, email, manager: company.manager });
    }
    const meta = requestMeta(ctx);
    if (gate.ok) {
      background.run('password reset request', async () => {
        if (await resets.request(email)) return;
        // A retired address gets no link (it logs in nowhere), but its account is told which
        // address to use — the same notice as a login with it, rate-limited the same way.
        const retired = await deps.linking.findRetired(email);
        if (retired && (await deps.throttle.hit('notice', email, meta.ip ?? undefined)).ok) await deps.linking.notifyRetiredUse(email, retired.account_id, meta);
      });
    }
    sent.set(ctx, { done: 'sent', email, ...(back ? { back } : {}) });
    ctx.status = 303;
    ctx.redirect('/password/forgot/sent');
  });

  router.get('/forgot/sent', (ctx) => {
    const outcome = sent.shown(ctx, 'sent', '/password/forgot');
    if (outcome) page(ctx, 200, 'recovery/sent', { title: 'Check your email', email: outcome.email, back: outcome.back });
  });

  /**
   * A link that sets nothing: spent, replaced or expired (400), or refused by the decision point
   * because of the account's state — deactivated or closed since it was sent, or (later) moved
   * to its company's sign-in (403, with the reason the person can act on).
   */
  const unusable = (ctx: Context, problem: string) => problem === 'reset.link_invalid'
    ? page(ctx, 400, 'recovery/invalid', { title: 'This link can’t be used' })
    : page(ctx, 403, 'recovery/invalid', { title: 'This link can’t be used', refused: messageFor(problem) });

  router.get('/reset', async (ctx) => {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    const usable = await resets.check(token);
    if (!usable.ok) return unusable(ctx, usable.problem);
    page(ctx, 200, 'recovery/reset', { title: 'Choose a new password', token, email: usable.account.email, minLength: usable.minLength });
  });

  router.get('/reset/done', (ctx) => {
    if (sent.shown(ctx, 'reset', '/password/forgot')) page(ctx, 200, 'recovery/done', { title: 'Password changed' });
  });

  router.post('/reset', async (ctx) => {
    const input = parseForm(ctx, resetInput);
    // A full password hashing answers this form again, 503 with Retry-After (decision 0063).
    const result = await unlessBusy(ctx, () => resets.reset(input.token, input.password, requestMeta(ctx)));
    if (result.ok) {
      await deps.throttle.succeeded('password', result.email);
      deps.devices.remember(ctx, result.email);
      // Post/Redirect/Get: a reload says the password changed, not that the spent link can't be used.
      sent.set(ctx, { done: 'reset' });
      ctx.status = 303;
      return ctx.redirect('/password/reset/done');
    }
    if (result.problem === 'reset.link_invalid' || result.problem.startsWith('policy.')) return unusable(ctx, result.problem);
    const usable = await resets.check(input.token);
    page(ctx, 400, 'recovery/reset', { title: 'Choose a new password', token: input.token, email: usable.ok ? usable.account.email : '', ...(usable.ok ? { minLength: usable.minLength } : {}) }, result.problem as PageError);
  });

  return router;
}
