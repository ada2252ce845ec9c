import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountService } from '../../identity/accounts.ts';
import { normalizeEmail } from '../../identity/email-address.ts';
import type { Interactions } from '../../oidc/interactions.ts';
import { AppError } from '../../shared/errors.ts';
import { csrfToken } from '../../http/csrf.ts';
import { messageFor } from '../../http/messages.ts';
import type { Views } from '../../http/views.ts';
import { parseForm } from '../../http/validate.ts';
import { identifyInput, passwordInput } from './schema.ts';

/**
 * Identifier-first login (docs/flows/login.md): the email first, then the password. The first
 * step never looks the address up, so it cannot tell whether an account exists; the second
 * answers "email and password don't match" for an unknown address and a wrong password alike.
 */
export function loginRoutes(deps: { interactions: Interactions; accounts: AccountService; views: Views; renderConsent: (ctx: Context) => Promise<void> }) {
  const { interactions, accounts, views } = deps;
  const router = new Router({ prefix: '/interaction/:uid' });

  async function clientName(clientId: string): Promise<string> {
    return (await interactions.client(clientId))?.name ?? clientId;
  }

  async function requireLoginPrompt(ctx: Context) {
    const view = await interactions.view(ctx);
    if (view.prompt !== 'login') throw new AppError('interaction.expired', 400);
    return view;
  }

  function page(ctx: Context, status: number, name: string, data: Record<string, unknown>, errorCode?: string) {
    ctx.status = status;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = views.render(name, { ...data, csrf: csrfToken(ctx), error: errorCode ? messageFor(errorCode) : undefined });
  }

  router.get('/', async (ctx) => {
    const view = await interactions.view(ctx);
    if (view.prompt === 'consent') return deps.renderConsent(ctx);
    const hint = normalizeEmail(view.loginHint);
    page(ctx, 200, 'login/identify', { uid: view.uid, clientName: await clientName(view.clientId), title: 'Log in', email: hint }, undefined);
  });

  router.post('/identify', async (ctx) => {
    const view = await requireLoginPrompt(ctx);
    const input = parseForm(ctx, identifyInput);
    const email = normalizeEmail(input.email);
    const name = await clientName(view.clientId);
    if (!email) return page(ctx, 400, 'login/identify', { uid: view.uid, clientName: name, title: 'Log in', email: input.email }, 'login.invalid_email');
    page(ctx, 200, 'login/password', { uid: view.uid, clientName: name, title: 'Enter your password', email });
  });

  router.post('/password', async (ctx) => {
    const view = await requireLoginPrompt(ctx);
    const input = parseForm(ctx, passwordInput);
    const email = normalizeEmail(input.email);
    const name = await clientName(view.clientId);
    if (!email) return page(ctx, 400, 'login/identify', { uid: view.uid, clientName: name, title: 'Log in', email: input.email }, 'login.invalid_email');
    if (!input.password) return page(ctx, 400, 'login/password', { uid: view.uid, clientName: name, title: 'Enter your password', email }, 'login.password_required');
    const result = await accounts.authenticate(email, input.password);
    if (!result.ok) {
      ctx.state.log?.info({ code: result.code, clientId: view.clientId }, 'login failed');
      return page(ctx, result.code === 'login.account_inactive' ? 403 : 401, 'login/password', { uid: view.uid, clientName: name, title: 'Enter your password', email }, result.code);
    }
    ctx.state.log?.info({ accountId: result.account.id, clientId: view.clientId }, 'login succeeded');
    await interactions.finishLogin(ctx, { accountId: result.account.id, amr: ['pwd'] });
  });

  router.post('/abort', async (ctx) => {
    await interactions.abort(ctx);
  });

  return router;
}
