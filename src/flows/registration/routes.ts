import Router from '@koa/router';
import type { Context } from 'koa';
import type { RegistrationService } from '../../identity/registration.ts';
import { normalizeEmail } from '../../identity/email-address.ts';
import type { Interactions } from '../../oidc/interactions.ts';
import type { Background } from '../../shared/background.ts';
import type { Throttle } from '../../identity/throttle.ts';
import { waitMessage } from '../../http/messages.ts';
import type { Views } from '../../http/views.ts';
import { pageRenderer } from '../../http/page.ts';
import { parseForm } from '../../http/validate.ts';
import { codeInput, detailsInput, emailInput } from './schema.ts';
import type { LoginCompletion } from '../login/completion.ts';
import { loginInteraction as loginGuard } from '../login/interaction.ts';
import { throttled } from '../throttled.ts';
import { connectorStartPath } from '../login/strategy.ts';
import { unlessBusy } from '../busy.ts';
import { flashMessages } from '../../http/flash.ts';

/**
 * Sign-up inside a login interaction (docs/flows/sign-up.md), so the new account ends signed in
 * and back at the relying party that asked. The address step answers the same whatever the
 * address: the lookup and the email run in the background. Sign-ups are throttled per address
 * typed and per client address, wrong codes per sign-up and per client address.
 */
export function registrationRoutes(deps: {
  registration: RegistrationService;
  interactions: Interactions;
  views: Views;
  background: Background;
  throttle: Throttle;
  /** The login's completion service: the new account's login goes on as any other. */
  completion: LoginCompletion;
  minLength: number;
}) {
  const { throttle } = deps;
  const { registration, interactions, views, background } = deps;
  const router = new Router({ prefix: '/interaction/:uid/signup' });

  const loginInteraction = (ctx: Context) => loginGuard(interactions, ctx);

  const page = pageRenderer(views, { minLength: deps.minLength });
  // "Check your email" is a page of its own (Post/Redirect/Get): a reload shows it again instead
  // of sending another code, whose new flow replaced the first — the link in the first mail then
  // said to start again. The address waits in a signed cookie for a minute (the flow itself is
  // written in the background), then the open flow says it.
  const sentTo = flashMessages({ name: 'lanyard.signup_sent', path: '/interaction' });

  router.get('/', async (ctx) => {
    const it = await loginInteraction(ctx);
    page(ctx, 200, 'registration/email', { ...it, title: 'Create your account', email: normalizeEmail(it.loginHint) ?? '' });
  });

  router.post('/', async (ctx) => {
    const it = await loginInteraction(ctx);
    const input = parseForm(ctx, emailInput);
    const email = normalizeEmail(input.email);
    if (!email) return page(ctx, 400, 'registration/email', { ...it, title: 'Create your account', email: input.email }, 'login.invalid_email');
    const gate = await throttle.hit('signup', email, ctx.ip);
    if (!gate.ok) return page(ctx, 429, 'registration/email', { ...it, title: 'Create your account', email }, waitMessage(ctx, gate.retryAfterSeconds));
    // On a domain whose organization signs its people in through its own identity provider,
    // accounts are made by that sign-in, not here: the page says so and leads there (nothing is
    // mailed). The same for every address on the domain.
    const company = await registration.companySignIn(email);
    if (company) {
      ctx.state.log?.info({ clientId: it.clientId, connector: company.connector }, 'sign-up refused: the domain signs in through its company identity provider');
      return page(ctx, 403, 'registration/company', { ...it, title: `Sign in through ${company.manager}`, email, manager: company.manager, ssoPath: connectorStartPath(it.uid, company.connector, email) });
    }
    background.run('sign-up start', () => registration.start(it.uid, email));
    sentTo.set(ctx, { uid: it.uid, email });
    ctx.status = 303;
    ctx.redirect(`/interaction/${it.uid}/signup/code`);
  });

  router.get('/code', async (ctx) => {
    const it = await loginInteraction(ctx);
    const kept = sentTo.peek(ctx);
    const email = kept.uid === it.uid && kept.email ? kept.email : (await registration.current(it.uid))?.email;
    if (!email) {
      ctx.status = 303;
      return ctx.redirect(`/interaction/${it.uid}/signup`);
    }
    page(ctx, 200, 'registration/code', { ...it, title: 'Check your email', email });
  });

  router.post('/code', async (ctx) => {
    const it = await loginInteraction(ctx);
    const input = parseForm(ctx, codeInput);
    // A right code proves the sign-up, not a returning person: its counter is kept, not cleared.
    const t = await throttled(ctx, throttle, { scope: 'email-code', subject: it.uid }, () => registration.verifyCode(it.uid, input.code), (r) => (r === 'verified' ? 'kept' : 'failed'));
    if (t.refused) {
      const flow = await registration.current(it.uid);
      return page(ctx, 429, 'registration/code', { ...it, title: 'Check your email', email: flow?.email ?? '' }, t.error);
    }
    const result = t.result;
    if (result === 'verified') {
      ctx.status = 303;
      return ctx.redirect(`/interaction/${it.uid}/signup/details`);
    }
    if (result === 'invalid') {
      const flow = await registration.current(it.uid);
      return page(ctx, 400, 'registration/code', { ...it, title: 'Check your email', email: flow?.email ?? '' }, t.orWait('signup.code_invalid'));
    }
    // "Send a new code" sends one to the same address (a new flow replaces this one); the
    // address is offered only while the flow is still there (locked, not expired).
    const flow = result === 'locked' ? await registration.current(it.uid) : undefined;
    page(ctx, 400, 'registration/restart', { ...it, title: 'Start again', email: flow?.email ?? '' }, result === 'locked' ? 'signup.code_locked' : 'signup.expired');
  });

  // The link in the email verifies the address only in the browser that started the sign-up
  // (the interaction cookie is there). Opened anywhere else it changes nothing: otherwise someone
  // who started a sign-up with another person's address would get it verified by that person's
  // click, and own an account on their address. The code still works across devices.
  router.get('/verify', async (ctx) => {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    const target = await registration.linkTarget(token);
    const here = target === ctx.params.uid && (await interactions.view(ctx).then((v) => v.uid === target, () => false));
    if (here && (await registration.verifyLink(token)) === target) {
      ctx.status = 303;
      return ctx.redirect(`/interaction/${target}/signup/details`);
    }
    // Opened again where it already verified the address (a double click, a second tab): the
    // details form is where the person is, not "start again".
    const uid = String(ctx.params.uid);
    if (!target && (await registration.linkUsedFor(uid, token)) && (await interactions.view(ctx).then((v) => v.uid === uid, () => false))) {
      ctx.status = 303;
      return ctx.redirect(`/interaction/${uid}/signup/details`);
    }
    page(ctx, target ? 200 : 400, target ? 'registration/verified-elsewhere' : 'registration/link-invalid', { title: target ? 'Open it where you started' : 'This link can’t be used' });
  });

  router.get('/details', async (ctx) => {
    const it = await loginInteraction(ctx);
    const flow = await registration.current(it.uid);
    if (!flow?.verified_at) return page(ctx, 400, 'registration/restart', { ...it, title: 'Start again' }, 'signup.expired');
    page(ctx, 200, 'registration/details', { ...it, title: 'Finish creating your account', email: flow.email, name: '', minLength: await registration.minLengthFor(flow.email) });
  });

  router.post('/details', async (ctx) => {
    const it = await loginInteraction(ctx);
    const input = parseForm(ctx, detailsInput);
    // A full password hashing answers this form again, 503 with Retry-After (decision 0063).
    const result = await unlessBusy(ctx, () => registration.complete(it.uid, input));
    if (result.ok) {
      ctx.state.log?.info({ accountId: result.account.id }, 'account created');
      // The password just chosen is the first factor: the decision point decides what follows
      // (two-step verification when required or asked for by the relying party).
      return deps.completion.proved(ctx, it, { account: result.account, method: 'password', amr: ['pwd'], via: 'signup' });
    }
    if (result.problem === 'signup.expired') return page(ctx, 400, 'registration/restart', { ...it, title: 'Start again' }, result.problem);
    const flow = await registration.current(it.uid);
    // The field at fault is marked for assistive technology: the name's problems on the name.
    const field = result.problem.startsWith('signup.name') ? 'name' : result.problem.startsWith('password.') ? 'password' : undefined;
    page(ctx, result.problem === 'signup.email_taken' ? 409 : result.problem.startsWith('policy.') ? 403 : 400, 'registration/details', { ...it, title: 'Finish creating your account', email: flow?.email ?? '', name: input.name, field, ...(flow ? { minLength: await registration.minLengthFor(flow.email) } : {}) }, result.problem);
  });

  return router;
}
