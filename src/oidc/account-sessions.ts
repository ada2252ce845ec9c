import type Provider from 'oidc-provider';
import type { LoginFlowQueries } from '../persistence/queries/login-flows.ts';
import type { Database } from '../persistence/db.ts';
import type { AccountActivityQueries } from '../persistence/queries/account-activity.ts';
import type { OidcPayloadQueries } from '../persistence/queries/oidc-payloads.ts';
import type { Clock } from '../shared/clock.ts';
import { sha256 } from '../shared/crypto.ts';
import type { Logger } from '../shared/logger.ts';

interface Authorization {
  sid?: string;
  grantId?: string;
}

/**
 * Sign an account out everywhere: after a password reset or change, a closure or an admin's
 * deactivation. Every session of the account (but one, if asked) ends, every grant with its access
 * and refresh tokens is revoked, every login of it in progress ends, in one transaction; then
 * each client that was part of an ended session gets a back-channel logout token (OIDC Back-Channel Logout 1.0 §2.5), as at a logout.
 */
export function createAccountSessions(deps: { provider: Provider; db: Database; queries: OidcPayloadQueries; activity: AccountActivityQueries; loginFlows: Pick<LoginFlowQueries, 'removeForAccount'>; clock: Clock; logger: Logger }) {
  const { provider, db, queries, activity, clock, logger } = deps;

  async function notify(accountId: string, notices: Array<{ clientId: string; sid: string }>): Promise<number> {
    const results = await Promise.allSettled(notices.map(async ({ clientId, sid }) => {
      // Client#backchannelLogout is public API of oidc-provider's Client model (not in its typings).
      const client = (await provider.Client.find(clientId)) as (Awaited<ReturnType<typeof provider.Client.find>> & { backchannelLogout(sub: string, sid: string): Promise<void> }) | undefined;
      if (!client?.backchannelLogoutUri) return false;
      await client.backchannelLogout(accountId, sid);
      return true;
    }));
    let notified = 0;
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') notified += result.value ? 1 : 0;
      else logger.warn({ clientId: notices[i]!.clientId, err: { message: (result.reason as Error).message } }, 'back-channel logout failed');
    });
    return notified;
  }

  return {
    /** Live sessions of the account with the device, address and clients of each (the "Sessions" settings page). */
    list: (accountId: string) => activity.sessions(accountId, new Date(clock.now())),

    /** Clients the account has granted access to, with the scopes granted (the "Connected apps" page). */
    connectedApps: (accountId: string) => activity.connectedApps(accountId, new Date(clock.now())),

    /** Revokes every grant of the account for one client, with their tokens and codes. */
    revokeClient: (accountId: string, clientId: string) => activity.revokeClient(accountId, clientId),

    /** Signs out one session of the account (the "Sessions" settings page). False if it is not the account's. */
    async endOne(accountId: string, sessionUid: string): Promise<boolean> {
      const notices: Array<{ clientId: string; sid: string }> = [];
      const found = await db.transaction(async (tx) => {
        const session = (await queries.sessionsOf(tx, accountId, new Date(clock.now()))).find((s) => s.session_uid === sessionUid);
        if (!session) return false;
        const grantIds: string[] = [];
        for (const [clientId, auth] of Object.entries((session.payload.authorizations ?? {}) as Record<string, Authorization>)) {
          if (auth.grantId) grantIds.push(auth.grantId);
          if (auth.sid) notices.push({ clientId, sid: auth.sid });
        }
        await queries.revokeSession(tx, accountId, sessionUid, grantIds, grantIds.map(sha256));
        return true;
      });
      if (found) await notify(accountId, notices);
      return found;
    },

    async endAll(accountId: string, options: { keepSessionUid?: string | undefined } = {}): Promise<{ sessions: number; notified: number }> {
      const keep = options.keepSessionUid ?? null;
      const notices: Array<{ clientId: string; sid: string }> = [];
      const keepGrantIds: string[] = [];
      let ended = 0;

      await db.transaction(async (tx) => {
        const sessions = await queries.sessionsOf(tx, accountId, new Date(clock.now()));
        for (const session of sessions) {
          const authorizations = (session.payload.authorizations ?? {}) as Record<string, Authorization>;
          for (const [clientId, auth] of Object.entries(authorizations)) {
            if (session.session_uid === keep) {
              if (auth.grantId) keepGrantIds.push(auth.grantId);
            } else if (auth.sid) {
              notices.push({ clientId, sid: auth.sid });
            }
          }
          if (session.session_uid !== keep) ended += 1;
        }
        await queries.revokeAccount(tx, accountId, keep, keepGrantIds.map(sha256), keepGrantIds);
        // Logins in progress end too: one past its password but not yet at its second step (or
        // enrolment, or the Trello offer) would otherwise finish after the reset or the undo.
        await deps.loginFlows.removeForAccount(tx, accountId);
      });

      const notified = await notify(accountId, notices);
      logger.info({ accountId, sessions: ended, notified }, 'account signed out everywhere');
      return { sessions: ended, notified };
    },
  };
}

export type AccountSessions = ReturnType<typeof createAccountSessions>;

/** A session's record used this recently is kept even without a session row (its write may be on its way). */
export const ACTIVITY_GRACE_MS = 10 * 60_000;

/**
 * Deletes the device and address records (`session_activity`) of sessions that ended or
 * expired, in batches of `batch`, at most `maxRows` per call (a sweeper task). Without it the
 * table grows by one row per browser session for ever. Returns how many went.
 */
export async function sweepEndedSessionActivity(deps: { activity: Pick<AccountActivityQueries, 'pruneEnded'>; clock: Clock; batch: number; maxRows: number }): Promise<number> {
  let removed = 0;
  while (removed < deps.maxRows) {
    const now = deps.clock.now();
    const n = await deps.activity.pruneEnded(new Date(now), new Date(now - ACTIVITY_GRACE_MS), Math.min(deps.batch, deps.maxRows - removed));
    removed += n;
    if (n < deps.batch) break;
  }
  return removed;
}
