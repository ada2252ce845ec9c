import type Provider from 'oidc-provider';
import type { Context } from 'koa';

/**
 * Who is signed in to this browser, read from oidc-provider's own session cookie. Lanyard's
 * account pages use the same session as every relying party: signing out anywhere signs out here.
 */
export function createBrowserSessions(provider: Provider) {
  return {
    async current(ctx: Context): Promise<{ accountId: string; uid: string } | undefined> {
      const session = await provider.Session.get(ctx as never);
      return session.accountId ? { accountId: session.accountId, uid: session.uid } : undefined;
    },
  };
}

export type BrowserSessions = ReturnType<typeof createBrowserSessions>;

/** The built-in client through which the account pages sign people in (response_type=none). */
export const ACCOUNT_CLIENT_ID = 'lanyard-account';
