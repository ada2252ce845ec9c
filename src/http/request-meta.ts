import type { Context } from 'koa';
import type { RequestMeta } from '../identity/security-events.ts';

/** Who is asking, for the audit trail: address (as Koa resolves it, see TRUST_PROXY), browser, request id. */
export function requestMeta(ctx: Context, clientId?: string): RequestMeta {
  return {
    ip: ctx.ip || null,
    userAgent: ctx.get('user-agent') || null,
    requestId: (ctx.state.requestId as string | undefined) ?? null,
    clientId: clientId ?? null,
  };
}
