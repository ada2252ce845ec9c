import type { ErrorOut, KoaContextWithOIDC, ProviderPages } from '../../oidc/provider.ts';
import { messageFor, messages } from '../../http/messages.ts';
import type { Views } from '../../http/views.ts';

/**
 * Pages that oidc-provider renders through its hooks: the logout confirmation and result
 * (OIDC RP-Initiated Logout 1.0) and protocol errors that cannot be sent back to the client.
 */
export function providerPages(views: Views): ProviderPages {
  const clientName = (ctx: KoaContextWithOIDC) => ctx.oidc?.client?.clientName;
  return {
    logoutConfirm: (ctx, form) => views.render('logout/confirm', { title: 'Log out', form, clientName: clientName(ctx) }),
    logoutDone: (ctx) => views.render('logout/done', { title: 'Logged out', clientName: clientName(ctx) }),
    error(ctx, out: ErrorOut) {
      const code = out.error === 'server_error' ? 'server.error' : `oidc.${out.error}`;
      const message = messageFor(code in messages ? code : 'oidc.default');
      return views.render('errors/error', {
        title: message.title,
        text: message.text,
        detail: out.error === 'server_error' ? undefined : [out.error, out.error_description].filter(Boolean).join(': '),
        reference: (ctx as unknown as { state?: { requestId?: string } }).state?.requestId,
      });
    },
  };
}
