import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountService } from '../../identity/accounts.ts';
import { normalizeEmail } from '../../identity/email-address.ts';
import type { Interactions } from '../../oidc/interactions.ts';
import type { SecurityEvents } from '../../identity/security-events.ts';
import type { Throttle } from '../../identity/throttle.ts';
import { AppError } from '../../shared/errors.ts';
import { waitMessage } from '../../http/messages.ts';
import { requestMeta } from '../../http/request-meta.ts';
import type { Views } from '../../http/views.ts';
import { pageRenderer } from '../../http/page.ts';
import { parseForm } from '../../http/validate.ts';
import { identifyInput, passwordInput } from './schema.ts';
import type { SecondStep } from './second-step.ts';
import type { TrelloMigration } from './trello-migration.ts';
import type { TrelloLinking } from '../../legacy-trello/linking.ts';
import type { DeviceCookies } from '../../http/device-cookie.ts';
import type { Background } from '../../shared/background.ts';

/**
 * Identifier-first login (docs/flows/login.md): the email first, then the password. The first
 * step never looks the address up, so it cannot tell whether an account exists; the second
 * answers "email and password don't match" for an unknown address and a wrong password alike,
 * and throttles both alike: failures are counted per address typed, known or not, and per client
 * address (src/identity/throttle.ts).
 */
export function loginRoutes(deps: {
  interactions: Interactions;
  accounts: AccountService;
  views: Views;
  throttle: Throttle;
  events: SecurityEvents;
  secondStep: SecondStep;
  trello: TrelloMigration;
  linking: TrelloLinking;
  devices: DeviceCookies;
  background: Background;
  /** Show "Continue with Google" (the upstream provider is configured). */
  googleEnabled: boolean;
  renderConsent: (ctx: Context) => Promise<void>;
}) {
  const { interactions, accounts, views, throttle, events } = deps;
  const router = new Router({ prefix: '/interaction/:uid' });

  async function clientName(clientId: string): Promise<string> {
    return (await interactions.client(clientId))?.name ?? clientId;
  }

  async function requireLoginPrompt(ctx: Context) {
    const view = await interactions.view(ctx);
    if (view.prompt !== 'login') throw new AppError('interaction.expired', 400);
    return view;
  }

  const page = pageRenderer(views, { google: deps.googleEnabled });

  router.get('/', async (ctx) => {
    const view = await interactions.view(ctx);
    if (view.prompt === 'consent') return deps.renderConsent(ctx);
    const hint = normalizeEmail(view.loginHint);
    page(ctx, 200, 'login/identify', { uid: view.uid, clientName: await clientName(view.clientId), title: 'Log in', email: hint, google: deps.googleEnabled }, undefined);
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
    const data = { uid: view.uid, clientName: name, title: 'Enter your password', email };
    const meta = requestMeta(ctx, view.clientId);
    // A browser that signed in with this address before has an allowance of its own.
    const device = deps.devices.known(ctx, email);
    const gate = await throttle.attempt('password', email, ctx.ip, device);
    if (!gate.ok) {
      // Refused before the password is even checked: a guess made now tells nothing.
      await events.record({ type: 'login.failed', accountId: (await accounts.findByEmail(email))?.id, reason: 'throttled' }, meta);
      return page(ctx, 429, 'login/password', data, waitMessage(ctx, gate.retryAfterSeconds));
    }
    const result = await accounts.authenticate(email, input.password);
    // A retired address never logs in. Its answer is the one an unknown address or a wrong
    // password gets — same status, page and throttling — so it cannot be used to test addresses;
    // every address of its account is told, by mail and off the response path, which one to use
    // (at most as often as a password reset). An address is an account's or retired, never both:
    // only an unknown one is looked up here.
    const retired = !result.ok && result.reason === 'unknown_account' ? await deps.linking.findRetired(email) : undefined;
    if (retired) {
      // Unknown addresses and wrong passwords each cost one Trello (bcrypt) check after argon2:
      // so does this answer, or its time would tell a retired address apart.
      await deps.linking.matchLegacyPassword([], input.password);
      const wait = await throttle.failed('password', ctx.ip, gate);
      deps.background.run('retired address notice', async () => {
        if ((await throttle.hit('notice', email, ctx.ip)).ok) await deps.linking.notifyRetiredUse(email, retired.account_id, meta);
      });
      ctx.state.log?.info({ clientId: view.clientId }, 'login with a retired address refused');
      return page(ctx, 401, 'login/password', data, wait > 0 ? waitMessage(ctx, wait) : 'login.invalid_credentials');
    }
    if (!result.ok && result.reason === 'unknown_account' && (await deps.trello.tryTrelloPassword(ctx, view.uid, email, input.password))) {
      await throttle.succeeded('password', email, device);
      ctx.state.log?.info({ clientId: view.clientId }, 'trello password accepted: migration review');
      return;
    }
    // A Trello password at an account's address: the linked member's (refused by name), or an
    // unlinked member's — then the account is proven next and the member linked to it or, when
    // the account already has its member, the member reviews another address of its own. The
    // attempt stays counted; the account's password was not given (trello-migration.ts).
    const trelloPassword = !result.ok && (result.reason === 'wrong_password' || result.reason === 'no_password')
      ? await deps.trello.trelloPasswordOnAccount(ctx, view.uid, result.accountId, email, input.password)
      : undefined;
    if (trelloPassword === 'link_offered' || trelloPassword === 'review') return;
    if (trelloPassword === 'retired' && !result.ok) {
      const wait = await throttle.failed('password', ctx.ip, gate);
      await events.record({ type: 'login.failed', accountId: result.accountId, reason: 'trello_password' }, meta);
      return page(ctx, 401, 'login/password', data, wait > 0 ? waitMessage(ctx, wait) : 'trello.password_retired');
    }
    if (!result.ok) {
      const wait = await throttle.failed('password', ctx.ip, gate);
      await events.record({ type: 'login.failed', accountId: result.accountId, reason: result.reason }, meta);
      ctx.state.log?.info({ code: result.code, clientId: view.clientId }, 'login failed');
      return page(ctx, result.code === 'login.account_inactive' ? 403 : 401, 'login/password', data, wait > 0 ? waitMessage(ctx, wait) : result.code);
    }
    await throttle.succeeded('password', email, device);
    deps.devices.remember(ctx, email);
    // An unlinked Trello member has this address: the link is offered before going on.
    if (await deps.trello.offerLink(ctx, { uid: view.uid, clientName: name }, result.account, ['pwd'], Boolean(result.reopen))) return;
    await deps.secondStep.afterFirstFactor(ctx, { uid: view.uid, clientId: view.clientId, clientName: name }, result.account, ['pwd'], { reopen: Boolean(result.reopen) });
  });

  router.post('/abort', async (ctx) => {
    await interactions.abort(ctx);
  });

  return router;
}
