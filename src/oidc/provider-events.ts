import type Provider from 'oidc-provider';
import type { SecurityEvents } from '../identity/security-events.ts';
import type { Defer } from '../persistence/db.ts';
import type { AccountActivityQueries } from '../persistence/queries/account-activity.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';

/**
 * What Lanyard records when the engine finishes something on its own routes (oidc-provider's
 * documented events). Inside the engine's request (`defer`, the request's batch of writes) both
 * are stored with the engine's own writes, in the same statement (issue 14: the end of a login
 * is one commit, session, code and the session's device together); outside one they run off the
 * response path, and a failure is one warn line, never shown.
 */
export function listenToProviderEvents(deps: { provider: Provider; activity: AccountActivityQueries; events: SecurityEvents; clock: Clock; logger: Logger; defer?: Defer }): void {
  const { provider, activity, events, clock, logger } = deps;

  // The device and address of each session as an authorization completes, for the "Sessions"
  // settings page.
  provider.on('authorization.success', (ctx) => {
    const session = ctx.oidc.session;
    if (!session?.accountId || !session.uid) return;
    const row = { sessionUid: session.uid, accountId: session.accountId, userAgent: ctx.get('user-agent').slice(0, 300) || null, ip: ctx.ip || null, now: new Date(clock.now()) };
    if (deps.defer?.(activity.touching(row))) return;
    activity.touch(row).catch((err: unknown) => logger.warn({ err: { message: (err as Error).message } }, 'recording session activity failed'));
  });

  // Logouts end in the engine (RP-initiated logout, OIDC RP-Initiated Logout 1.0 §2); the
  // session object still names its account when the event fires.
  provider.on('end_session.success', (ctx) => {
    const accountId = ctx.oidc.session?.accountId;
    if (!accountId) return;
    events.record({ type: 'logout', accountId }, { ip: ctx.ip || null, userAgent: ctx.get('user-agent') || null, requestId: (ctx.state.requestId as string | undefined) ?? null, clientId: ctx.oidc.client?.clientId ?? null })
      .catch((err: unknown) => logger.warn({ err: { message: (err as Error).message } }, 'recording a logout failed'));
  });
}
