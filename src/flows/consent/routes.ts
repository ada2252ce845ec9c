import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountService } from '../../identity/accounts.ts';
import type { Interactions } from '../../oidc/interactions.ts';
import { AppError } from '../../shared/errors.ts';
import { csrfToken } from '../../http/csrf.ts';
import type { Views } from '../../http/views.ts';

/** What each scope lets a client do, in the words the consent page uses. */
const SCOPE_TEXT: Record<string, string> = {
  openid: 'Know who you are when you log in',
  profile: 'See your name, nickname, picture, language and time zone',
  email: 'See your email address',
  offline_access: 'Keep access to this information when you’re not using it',
};

export function describeScopes(scopes: string[], claims: string[]): string[] {
  const items = scopes.map((scope) => SCOPE_TEXT[scope] ?? `Use the “${scope}” permission`);
  if (claims.length) items.push(`See these details: ${claims.join(', ')}`);
  return items;
}

/**
 * Consent (docs/flows/consent.md). First-party products never reach this page unless they are
 * native apps: a custom URI scheme can be claimed by any app on the device, so RFC 8252 §8.6
 * has the user confirm which app they are signing in to.
 */
export function consentRoutes(deps: { interactions: Interactions; accounts: AccountService; views: Views }) {
  const { interactions, accounts, views } = deps;
  const router = new Router({ prefix: '/interaction/:uid' });

  async function renderConsent(ctx: Context): Promise<void> {
    const view = await interactions.view(ctx);
    if (view.prompt !== 'consent' || !view.sessionAccountId) throw new AppError('interaction.expired', 400);
    const client = await interactions.client(view.clientId);
    if (!client) throw new AppError('interaction.expired', 400);
    if (client.firstParty && !view.reasons.includes('native_client_prompt')) return interactions.finishConsent(ctx);
    const account = await accounts.findById(view.sessionAccountId);
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = views.render('consent/consent', {
      title: `Allow ${client.name}`,
      uid: view.uid,
      clientName: client.name,
      email: account?.email ?? '',
      items: describeScopes(view.missingScopes, view.missingClaims),
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
