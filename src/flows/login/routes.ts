import Router from '@koa/router';
import type { Context } from 'koa';
import { normalizeEmail } from '../../identity/email-address.ts';
import { SESSION_INSUFFICIENT, type Interactions } from '../../oidc/interactions.ts';
import type { Policy } from '../../policy/policy.ts';
import type { PageRenderer } from '../../http/page.ts';
import { parseForm } from '../../http/validate.ts';
import { identifyInput } from './schema.ts';
import type { LoginCompletion } from './completion.ts';
import { loginInteraction } from './interaction.ts';
import { connectorStartPath, passwordPagePath, type LoginStrategy } from './strategy.ts';

/**
 * The login router (docs/flows/login.md): the identifier step, then whatever the strategies
 * answer. It knows no method: each strategy's steps are mounted under /interaction/:uid behind
 * the one login guard, and a factor a step reports goes to the completion service. Adding a way
 * of signing in is adding a strategy to the list `app.ts` passes here.
 */
/** The address a login page carries in its query (`?email=`), normalized; anything else is none. */
const emailInQuery = (ctx: Context): string | undefined =>
  typeof ctx.query.email === 'string' && ctx.query.email.length <= 320 ? normalizeEmail(ctx.query.email) : undefined;

export function loginRoutes(deps: {
  interactions: Interactions;
  policy: Policy;
  completion: LoginCompletion;
  strategies: readonly LoginStrategy[];
  page: PageRenderer;
  renderConsent: (ctx: Context) => Promise<void>;
  /** The address of the account a browser is signed in as, for the page that asks it again. */
  accountEmail: (accountId: string) => Promise<string | undefined>;
}) {
  const { interactions, page } = deps;
  const router = new Router({ prefix: '/interaction/:uid' });

  router.get('/', async (ctx) => {
    const view = await interactions.view(ctx);
    if (view.prompt === 'consent') return deps.renderConsent(ctx);
    const it = await loginInteraction(interactions, ctx);
    // A browser signed in already that a relying party asks to log in again (prompt=login,
    // max_age): its own address is filled in, as a login_hint is; the person may change it. Not
    // for a session the account's policy ended (idle, too old, a policy change: session
    // insufficient): that is the shared machine someone walked away from, and the next person
    // must not be shown who was signed in.
    const asked = (view.reasons.includes('login_prompt') || view.reasons.includes('max_age')) && !view.reasons.includes(SESSION_INSUFFICIENT);
    // The address typed a step later comes back with "Change" and "Back to log in" (`email`), so
    // a typo is fixed rather than typed again; it only fills the field in.
    const typed = emailInQuery(ctx);
    const email = typed ?? normalizeEmail(view.loginHint) ?? (asked && view.sessionAccountId ? await deps.accountEmail(view.sessionAccountId) : undefined);
    page(ctx, 200, 'login/identify', { uid: it.uid, clientName: it.clientName, title: 'Log in', email });
  });

  // The identifier step asks the decision point which step follows the address: home-realm
  // discovery (decision 0033). On a domain no organization holds it asks about the address alone —
  // one lookup of the domain, none of the account — so the answer cannot tell whether an account
  // exists; on a domain an organization verified, the policy the address follows there decides,
  // and an address that must sign in through the company's identity provider goes straight there:
  // the password page is never shown.
  router.post('/identify', async (ctx) => {
    const it = await loginInteraction(interactions, ctx);
    const input = parseForm(ctx, identifyInput);
    const email = normalizeEmail(input.email);
    if (!email) return page(ctx, 400, 'login/identify', { uid: it.uid, clientName: it.clientName, title: 'Log in', email: input.email }, 'login.invalid_email');
    const subject = await deps.policy.discover(email);
    const decision = deps.policy.decide({ subject, stage: 'identify', wantedAcr: it.wantedAcr });
    if (decision.outcome === 'use_connector') {
      ctx.state.log?.info({ clientId: it.clientId, connector: decision.connector }, 'identifier step: sign-in through the company identity provider');
      ctx.status = 303;
      return ctx.redirect(connectorStartPath(it.uid, decision.connector, email));
    }
    if (decision.outcome === 'deny') {
      ctx.state.log?.info({ clientId: it.clientId, outcome: decision.outcome }, 'identifier step refused by policy');
      return page(ctx, 403, 'login/identify', { uid: it.uid, clientName: it.clientName, title: 'Log in', email }, decision.reason);
    }
    // The password page is a GET of its own (Post/Redirect/Get): Back from the application, or a
    // reload, then fetches a page instead of asking to send this form again.
    ctx.status = 303;
    ctx.redirect(passwordPagePath(it.uid, email));
  });

  // The address rides in the query, as for "Change" (the access log records paths without it).
  // What it may do is decided again when the password is sent (password.ts): this page only asks.
  router.get('/password', async (ctx) => {
    const it = await loginInteraction(interactions, ctx);
    const email = emailInQuery(ctx);
    if (!email) {
      ctx.status = 303;
      return ctx.redirect(`/interaction/${encodeURIComponent(it.uid)}`);
    }
    page(ctx, 200, 'login/password', { uid: it.uid, clientName: it.clientName, title: 'Enter your password', email });
  });

  for (const strategy of deps.strategies) {
    for (const step of strategy.steps) {
      router[step.method](step.path, async (ctx) => {
        const it = await loginInteraction(interactions, ctx);
        const factor = await step.handle(ctx, it);
        if (factor) await deps.completion.proved(ctx, it, factor);
      });
    }
  }

  router.post('/abort', async (ctx) => {
    await interactions.abort(ctx);
  });

  return router;
}
