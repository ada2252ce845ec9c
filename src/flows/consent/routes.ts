import { MANAGE_ORGANIZATIONS_SCOPE } from '../../identity/claims-release.ts';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountService } from '../../identity/accounts.ts';
import type { Interactions } from '../../oidc/interactions.ts';
import { AppError } from '../../shared/errors.ts';
import { csrfToken } from '../../http/csrf.ts';
import type { Views } from '../../http/views.ts';
import type { ClaimsRelease } from '../../identity/claims-release.ts';

/**
 * Consent (docs/flows/consent.md). First-party products never reach this page unless they are
 * native apps: a custom URI scheme can be claimed by any app on the device, so RFC 8252 §8.6
 * has the user confirm which app they are signing in to.
 *
 * What the page lists comes from the function that releases the claims (src/identity/claims-release.ts),
 * for the scopes and claims being asked: Allow grants exactly that, and the tokens carry exactly that.
 */
export function consentRoutes(deps: { interactions: Interactions; accounts: AccountService; release: ClaimsRelease; views: Views }) {
  const { interactions, accounts, views } = deps;
  const router = new Router({ prefix: '/interaction/:uid' });

  async function renderConsent(ctx: Context): Promise<void> {
    const view = await interactions.view(ctx);
    if (view.prompt !== 'consent' || !view.sessionAccountId) throw new AppError('interaction.expired', 400);
    const client = await interactions.client(view.clientId);
    if (!client) throw new AppError('interaction.expired', 400);
    // Our own products skip the page — except for acting as an organization's admin, which is
    // always asked for by name (decision 0032), and for native apps (RFC 8252 §8.6).
    const named = view.missingScopes.includes(MANAGE_ORGANIZATIONS_SCOPE);
    if (client.firstParty && !named && !view.reasons.includes('native_client_prompt')) return interactions.finishConsent(ctx);
    const account = await accounts.findById(view.sessionAccountId);
    if (!account || account.status !== 'active') throw new AppError('interaction.expired', 400);
    const release = await deps.release.forClient(account, client.clientId, { scopes: view.missingScopes, claims: view.missingClaims });
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = views.render('consent/consent', {
      title: `Allow ${client.name}`,
      uid: view.uid,
      clientName: client.name,
      email: account.email,
      items: release.items,
      policyUri: client.policyUri,
      tosUri: client.tosUri,
      csrf: csrfToken(ctx),
    });
  }

  router.post('/consent', async (ctx) => {
    await interactions.finishConsent(ctx);
  });

  return { router, renderConsent };
}
