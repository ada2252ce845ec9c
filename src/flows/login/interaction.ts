import type { Context } from 'koa';
import type { Interactions, InteractionView } from '../../oidc/interactions.ts';
import type { Acr } from '../../policy/levels.ts';
import { AppError } from '../../shared/errors.ts';

/** The login interaction a request belongs to, as every login step sees it. */
export interface LoginContext {
  uid: string;
  clientId: string;
  clientName: string;
  /** Seconds until the interaction expires: the flow record lives no longer. */
  expiresIn: number;
  /** The level the relying party asked for (`acr_values`). */
  wantedAcr: Acr | undefined;
  loginHint: string | undefined;
  /**
   * The oldest sign-in at an upstream provider (Google, a company's) this login accepts, seconds.
   * 0 when someone is already signed in here and must prove themselves again (prompt=login,
   * max_age, a session that no longer meets the policy, a sensitive change in settings), or the
   * relying party asked for prompt=login in a browser signed in to nothing here: an upstream
   * session is not the fresh login asked for. Otherwise the relying party's max_age when it sent
   * one (OIDC Core §3.1.2.1), else none: the upstream's standing session is as good as a sign-in
   * made now.
   */
  upstreamMaxAge: number | undefined;
}

export const loginContextOf = (view: InteractionView, clientName: string): LoginContext => ({
  uid: view.uid,
  clientId: view.clientId,
  clientName,
  expiresIn: view.expiresIn,
  wantedAcr: view.wantedAcr,
  loginHint: view.loginHint,
  upstreamMaxAge: view.sessionAccountId !== undefined || view.loginPrompted ? 0 : view.maxAge,
});

/**
 * The one guard of every login step: the interaction bound to this browser must be waiting for
 * a login. A consent prompt (the login is already done) or a finished interaction is "your
 * sign-in has ended" — or, for one this browser finished, "you're done here" (finished.ts).
 */
export async function loginInteraction(interactions: Interactions, ctx: Context): Promise<LoginContext> {
  const view = await interactions.view(ctx);
  if (view.prompt !== 'login') throw new AppError('interaction.expired', 400);
  const client = await interactions.client(view.clientId);
  return loginContextOf(view, client?.name ?? view.clientId);
}
