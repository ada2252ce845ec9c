import type { Middleware } from 'koa';
import type { Interactions } from '../../oidc/interactions.ts';
import { pageRenderer } from '../../http/page.ts';
import type { Views } from '../../http/views.ts';
import { isAppError } from '../../shared/errors.ts';

/**
 * An interaction page opened again after this browser finished it (the back button after landing
 * in the app, a reload of the consent page) is not an expired sign-in: it says the sign-in is
 * done and leads back to the app. Any other unknown or expired interaction keeps the
 * "this sign-in has ended" answer.
 */
export function finishedInteractionPage(deps: { interactions: Interactions; views: Views }): Middleware {
  const page = pageRenderer(deps.views);
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      // GET (Back) or a form sent again (Back twice, then "resubmit"): either way it is done.
      if (!ctx.path.startsWith('/interaction/') || !isAppError(err) || err.code !== 'interaction.expired') throw err;
      const client = await deps.interactions.finished(ctx);
      if (!client) throw err;
      ctx.state.log?.info({ clientId: client.clientId }, 'finished interaction opened again');
      page(ctx, 200, 'login/finished', { title: 'You’re done here', clientName: client.name, homeUrl: client.homeUrl });
    }
  };
}
