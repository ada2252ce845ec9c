import Router from '@koa/router';
import type { Context } from 'koa';
import { normalizeEmail } from '../../identity/email-address.ts';
import type { Interactions } from '../../oidc/interactions.ts';
import type { Policy } from '../../policy/policy.ts';
import type { PageRenderer } from '../../http/page.ts';
import { parseForm } from '../../http/validate.ts';
import { identifyInput } from './schema.ts';
import type { LoginCompletion } from './completion.ts';
import { loginInteraction } from './interaction.ts';
import type { LoginStrategy } from './strategy.ts';

/**
 * The login router (docs/flows/login.md): the identifier step, then whatever the strategies
 * answer. It knows no method: each strategy's steps are mounted under /interaction/:uid behind
 * the one login guard, and a factor a step reports goes to the completion service. Adding a way
 * of signing in is adding a strategy to the list `app.ts` passes here.
 */
export function loginRoutes(deps: {
  interactions: Interactions;
  policy: Policy;
  completion: LoginCompletion;
  strategies: readonly LoginStrategy[];
  page: PageRenderer;
  renderConsent: (ctx: Context) => Promise<void>;
}) {
  const { interactions, page } = deps;
  const router = new Router({ prefix: '/interaction/:uid' });

  router.get('/', async (ctx) => {
    const view = await interactions.view(ctx);
    if (view.prompt === 'consent') return deps.renderConsent(ctx);
    const it = await loginInteraction(interactions, ctx);
    page(ctx, 200, 'login/identify', { uid: it.uid, clientName: it.clientName, title: 'Log in', email: normalizeEmail(view.loginHint) });
  });

  // The identifier step asks the decision point which step follows the address (home-realm
  // discovery, once connectors exist). It asks about the address, never its account: discovery
  // goes by the address's domain (a company's verified domain and its sign-in policy, issue 13),
  // so the answer cannot tell whether an account exists, and the step costs no account lookup.
  router.post('/identify', async (ctx) => {
    const it = await loginInteraction(interactions, ctx);
    const input = parseForm(ctx, identifyInput);
    const email = normalizeEmail(input.email);
    if (!email) return page(ctx, 400, 'login/identify', { uid: it.uid, clientName: it.clientName, title: 'Log in', email: input.email }, 'login.invalid_email');
    const decision = deps.policy.decide({ subject: { kind: 'address', email }, stage: 'identify', wantedAcr: it.wantedAcr });
    if (decision.outcome === 'use_connector' || decision.outcome === 'deny') {
      // No connector exists yet (company SSO comes with organizations): a connector strategy's
      // start step goes here. Until then the person is told this way is not available.
      ctx.state.log?.info({ clientId: it.clientId, outcome: decision.outcome }, 'identifier step refused by policy');
      return page(ctx, 403, 'login/identify', { uid: it.uid, clientName: it.clientName, title: 'Log in', email }, decision.outcome === 'deny' ? decision.reason : 'policy.method_not_allowed');
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
