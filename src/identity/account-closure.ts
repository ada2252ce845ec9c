import type { Database } from '../persistence/db.ts';
import type { AccountQueries } from '../persistence/queries/accounts.ts';
import type { Outbox } from '../mail/outbox.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type { RequestMeta, SecurityEvents } from './security-events.ts';
import type { Confirmation, ProofInput, Reauthentication } from './reauthentication.ts';
import type { Policy } from '../policy/policy.ts';
import { displayTime } from '../shared/display-time.ts';

export type CloseResult = { ok: true; deleteAfter: Date } | { ok: false; problem: 'password.current_wrong' | 'account.managed' } | Exclude<Confirmation, { ok: true }>;

/**
 * "Close my account" (docs/flows/settings.md): confirmed by a recent login or the current password
 * (the decision point says which, `reauthentication.ts`); the account is closed at
 * once (no login, no tokens: findAccount refuses it), everyone is signed out, and an email says
 * how to cancel. Logging in within `graceDays` reopens it (accounts.authenticate); after that the
 * personal data is erased by `eraseDue`, run by the background sweeper and `accounts purge`.
 *
 * A managed account is not its owner's to close: the decision point's `close_account` stage
 * refuses it (its managers delete it, src/organizations/managed-accounts.ts; decision 0030).
 * `eraseDue` also erases what an organization's admin deleted once its grace period is over.
 */
export function createAccountClosureService(deps: {
  db: Database;
  accounts: AccountQueries;
  outbox: Outbox;
  clock: Clock;
  issuer: string;
  graceDays: number;
  signOutEverywhere: (accountId: string) => Promise<unknown>;
  /** What other tables hold about accounts, each asked to forget the erased ones, in this order. */
  forgetters: Array<{ forgetAccounts(accountIds: string[]): Promise<void> }>;
  logger: Logger;
  events: SecurityEvents;
  reauthentication: Reauthentication;
  /** The decision point: its loader and `decide` (stage `close_account`). */
  decisions: Pick<Policy, 'load' | 'decide'>;
}) {
  const { db, accounts, outbox, clock } = deps;

  /** Erases accounts whose grace period is over; returns their ids. */
  async function eraseDue(limit = 500): Promise<string[]> {
    const ids = await db.transaction((tx) => accounts.eraseDue(tx, new Date(clock.now()), limit));
    if (ids.length) {
      for (const forgetter of deps.forgetters) await forgetter.forgetAccounts(ids);
    }
    return ids;
  }

  return {
    async close(accountId: string, proof: ProofInput, meta: RequestMeta = {}): Promise<CloseResult> {
      const loaded = await deps.decisions.load(accountId);
      if (!loaded) return { ok: false, problem: 'password.current_wrong' };
      const allowed = deps.decisions.decide({ subject: loaded.subject, stage: 'close_account' });
      if (allowed.outcome === 'deny' && allowed.reason === 'policy.method_not_allowed') return { ok: false, problem: 'account.managed' };
      if (allowed.outcome !== 'allow') return { ok: false, problem: 'password.current_wrong' };
      const { account } = loaded;
      const confirmed = await deps.reauthentication.confirm(account, proof);
      if (!confirmed.ok) return confirmed;
      const now = new Date(clock.now());
      const deleteAfter = new Date(clock.now() + deps.graceDays * 86_400_000);
      await db.transaction(async (tx) => {
        await accounts.close(tx, account.id, now, deleteAfter);
        await outbox.enqueue(tx, {
          to: account.email,
          template: 'account-closed',
          data: { name: account.name, email: account.email, deleteAfter: displayTime(deleteAfter), loginLink: `${deps.issuer}/account`, days: deps.graceDays },
        });
        await deps.events.record({ type: 'account.closed', accountId: account.id, detail: { deleteAfter: deleteAfter.toISOString() } }, meta, tx);
      });
      await deps.signOutEverywhere(account.id);
      outbox.kick();
      return { ok: true, deleteAfter };
    },

    /**
     * Cancels the closure of an account its owner logged in to within the grace period (the
     * login's completion asks; the decision point let the login through, `reopenable`). The
     * owner is told by mail and in the security activity: a closure is not undone silently, and
     * a login they did not make would be noticed. False when it is no longer reopenable.
     */
    async reopen(account: { id: string; email: string; name: string | null }, meta: RequestMeta = {}): Promise<boolean> {
      const reopened = await db.transaction(async (tx) => {
        if (!(await accounts.reopen(account.id, new Date(clock.now()), tx))) return false;
        await outbox.enqueue(tx, {
          to: account.email,
          template: 'account-reopened',
          data: { name: account.name, email: account.email, when: displayTime(new Date(clock.now())), resetLink: `${deps.issuer}/password/forgot` },
        });
        await deps.events.record({ type: 'account.reopened', accountId: account.id }, meta, tx);
        return true;
      });
      if (reopened) outbox.kick();
      return reopened;
    },

    eraseDue,

    /** The sweeper's task: erases what is due and says so once. */
    async sweep(): Promise<void> {
      const erased = await eraseDue();
      if (erased.length) deps.logger.info({ accountIds: erased }, 'closed accounts erased after their grace period');
    },
  };
}

export type AccountClosureService = ReturnType<typeof createAccountClosureService>;
