import type { Database, Queryable } from '../persistence/db.ts';
import type { AccountQueries, AccountRow } from '../persistence/queries/accounts.ts';
import type { EmailChangeQueries } from '../persistence/queries/email-changes.ts';
import type { TwoStepQueries } from '../persistence/queries/two-step.ts';
import type { TrelloMemberQueries } from '../persistence/queries/trello-members.ts';
import type { AccountIdentityQueries } from '../persistence/queries/account-identities.ts';
import type { AccountManagerQueries } from '../persistence/queries/account-managers.ts';
import type { PasswordResetQueries } from '../persistence/queries/password-reset-tokens.ts';
import type { Outbox } from '../mail/outbox.ts';
import type { Clock } from '../shared/clock.ts';
import { sha256 } from '../shared/crypto.ts';
import { randomSecret } from '../shared/ids.ts';
import { normalizeEmail } from './email-address.ts';
import type { RequestMeta, SecurityEvents } from './security-events.ts';
import type { Confirmation, ProofInput, Reauthentication } from './reauthentication.ts';
import type { Policy } from '../policy/policy.ts';

export type RequestResult =
  | { ok: true; newEmail: string }
  | { ok: false; problem: 'password.current_wrong' | 'login.invalid_email' | 'email.same' | 'account.managed' }
  | Exclude<Confirmation, { ok: true }>;
export type ConfirmResult = { ok: true; account: AccountRow } | { ok: false; problem: 'email.link_invalid' | 'signup.email_taken' };
export type UndoPreview = { ok: true; oldEmail: string; newEmail: string } | { ok: false; problem: 'email.undo_invalid' };
export type UndoResult = { ok: true; accountId: string; email: string } | { ok: false; problem: 'email.undo_invalid' | 'email.undo_taken' };

/** How long the old address's "this wasn't me" link works (decision 0085): a week, as Google's. */
export const UNDO_DAYS = 7;

/**
 * Changing the one address of an account (docs/flows/settings.md). It is confirmed by a recent
 * login or the current password (the decision point says which, `reauthentication.ts`); the new address must be verified by a link before anything changes; then the old
 * address is told, and can no longer be used to log in (an account has exactly one address).
 * An address that already has an account gets the "already registered" email instead, so the
 * settings page does not reveal it.
 *
 * A managed account's address belongs to its managers (an organization, a Trello Enterprise —
 * after linking too): the decision point's `email_change` stage refuses the change (method_not_allowed), answered "ask
 * your admin", at the request and again when the link is followed (decision 0030). An
 * organization's admin changes it instead (src/organizations/managed-accounts.ts).
 *
 * The old address is told with a link that undoes the change (decision 0085): whoever changed it
 * knew the password or held a session, so the undo puts the old address back and locks them out
 * — every session, token and login in progress ends, the password stops working, an
 * authenticator or an upstream login added around the change goes — and mails the old address a
 * link to set a new password.
 */
export function createEmailChangeService(deps: {
  db: Database;
  accounts: AccountQueries;
  changes: EmailChangeQueries;
  outbox: Outbox;
  clock: Clock;
  issuer: string;
  ttlSeconds: number;
  /** The decision point: its loader and `decide` (stage `email_change`). */
  decisions: Pick<Policy, 'load' | 'decide'>;
  events: SecurityEvents;
  reauthentication: Reauthentication;
  /** What an undo clears besides the address (decision 0085). */
  undo: {
    twoStep: Pick<TwoStepQueries, 'removeFactorConfirmedSince' | 'findFactor'>;
    trelloMembers: Pick<TrelloMemberQueries, 'cutGoogleSince'>;
    identities: Pick<AccountIdentityQueries, 'removeLinkedSince'>;
    managers: Pick<AccountManagerQueries, 'releaseFromOrganization'>;
    resetTokens: Pick<PasswordResetQueries, 'deleteForAccount'>;
    /** A reset link for the restored address, in the undo's transaction. */
    issueResetLink: (tx: Queryable, accountId: string) => Promise<{ link: string; minutes: number }>;
    signOutEverywhere: (accountId: string) => Promise<unknown>;
  };
}) {
  const { db, accounts, changes, outbox, clock, issuer } = deps;
  const now = () => new Date(clock.now());

  /** The account and whether its owner may change its address now (one statement). */
  async function changeable(accountId: string, tx?: Queryable): Promise<{ account?: AccountRow; problem?: 'account.managed' | 'inactive' }> {
    const loaded = await deps.decisions.load(accountId, tx);
    if (!loaded) return { problem: 'inactive' };
    const decision = deps.decisions.decide({ subject: loaded.subject, stage: 'email_change' });
    if (decision.outcome === 'allow') return { account: loaded.account };
    return { problem: decision.outcome === 'deny' && decision.reason === 'policy.method_not_allowed' ? 'account.managed' : 'inactive' };
  }

  return {
    pending: (accountId: string) => changes.pending(accountId, now()),

    async request(accountId: string, proof: ProofInput, newEmailInput: string): Promise<RequestResult> {
      const { account, problem } = await changeable(accountId);
      if (problem === 'account.managed') return { ok: false, problem };
      if (!account) return { ok: false, problem: 'password.current_wrong' };
      const confirmed = await deps.reauthentication.confirm(account, proof);
      if (!confirmed.ok) return confirmed;
      const newEmail = normalizeEmail(newEmailInput);
      if (!newEmail) return { ok: false, problem: 'login.invalid_email' };
      if (newEmail === account.email) return { ok: false, problem: 'email.same' };
      const taken = (await accounts.findByEmail(newEmail)) ?? (await accounts.isRetired(newEmail));
      const token = randomSecret(32);
      await db.transaction(async (tx) => {
        if (taken) {
          await outbox.enqueue(tx, { to: newEmail, template: 'address-in-use', data: { email: newEmail, loginLink: `${issuer}/account`, resetLink: `${issuer}/password/forgot` } });
          return;
        }
        await changes.replace(tx, { accountId: account.id, newEmail, tokenHash: sha256(token), now: now(), expiresAt: new Date(clock.now() + deps.ttlSeconds * 1000) });
        await outbox.enqueue(tx, {
          to: newEmail,
          template: 'email-change-verify',
          data: { name: account.name, newEmail, link: `${issuer}/account/email/verify?token=${token}`, minutes: Math.round(deps.ttlSeconds / 60) },
        });
      });
      outbox.kick();
      return { ok: true, newEmail };
    },

    /**
     * What a link would change, without changing it: opening the link shows the new address and
     * a button; only pressing it changes anything. A mail scanner that fetches every link in a
     * message (to look for malware) must not complete the change on its own.
     */
    async preview(token: string): Promise<{ ok: true; newEmail: string } | { ok: false; problem: 'email.link_invalid' }> {
      if (!wellFormed(token)) return { ok: false, problem: 'email.link_invalid' };
      const newEmail = await changes.peek(sha256(token), now());
      return newEmail ? { ok: true, newEmail } : { ok: false, problem: 'email.link_invalid' };
    },

    async confirm(token: string, meta: RequestMeta = {}): Promise<ConfirmResult> {
      if (!wellFormed(token)) return { ok: false, problem: 'email.link_invalid' };
      try {
        const result = await db.transaction(async (tx) => {
          const change = await changes.take(tx, sha256(token), now());
          if (!change) return undefined;
          // Managed since the request (claimed by an organization, an Enterprise set by the import),
          // or no longer active: the link is spent and nothing changes.
          const { account: before } = await changeable(change.account_id, tx);
          if (!before) return undefined;
          const { claimedBy } = await accounts.setEmail(tx, before.id, change.new_email, now());
          // The old address gets the way back: a reset would reach the new address only.
          const undo = randomSecret(32);
          await changes.addUndo(tx, { tokenHash: sha256(undo), accountId: before.id, oldEmail: before.email, newEmail: change.new_email, changedAt: now(), claimedBy, expiresAt: new Date(clock.now() + UNDO_DAYS * 86_400_000) });
          await outbox.enqueue(tx, {
            to: before.email,
            template: 'email-changed',
            data: { name: before.name, oldEmail: before.email, newEmail: change.new_email, undoLink: `${issuer}/account/email/undo?token=${undo}`, undoDays: UNDO_DAYS },
          });
          await deps.events.record({ type: 'email.changed', accountId: before.id, detail: { from: before.email, to: change.new_email } }, meta, tx);
          return { ...before, email: change.new_email, email_verified: true };
        });
        if (!result) return { ok: false, problem: 'email.link_invalid' };
        outbox.kick();
        return { ok: true, account: result };
      } catch (err) {
        // The address was registered by someone else after the request: the unique index decided.
        if ((err as { code?: string }).code === '23505') return { ok: false, problem: 'signup.email_taken' };
        throw err;
      }
    },

    /** What an undo link would put back, without doing it (a mail scanner fetching it changes nothing). */
    async previewUndo(token: string): Promise<UndoPreview> {
      const row = wellFormed(token) ? await changes.peekUndo(sha256(token), now()) : undefined;
      return row ? { ok: true, oldEmail: row.old_email, newEmail: row.new_email } : { ok: false, problem: 'email.undo_invalid' };
    },

    /**
     * "This wasn't me" (decision 0085), one transaction: the link is spent, the old address is the
     * account's again, and whoever changed it is locked out — the password stops working, a pending
     * change, reset links (sent to their address) and later changes' undo links go, an
     * authenticator switched on or an upstream login linked since the change or in the week before
     * it goes, an organization that claimed the account because of their address lets it go —
     * then the old address is mailed a reset link. Every session, grant and login in progress
     * ends after the commit (back-channel logout included). Not the decision point's to
     * refuse: the owner of the old address undoes what was done to the account, whatever its state
     * (a closure in its grace period is theirs to cancel by logging in).
     */
    async undo(token: string, meta: RequestMeta = {}): Promise<UndoResult> {
      if (!wellFormed(token)) return { ok: false, problem: 'email.undo_invalid' };
      const u = deps.undo;
      try {
        const result = await db.transaction(async (tx) => {
          const row = await changes.takeUndo(tx, sha256(token), now());
          const account = row ? await accounts.findById(row.account_id, tx) : undefined;
          // An erased account (its closure's grace ended) has nothing left to give back.
          if (!row || !account || account.erased_at) return undefined;
          // What an intruder added to come back with goes if it came since the change — or in
          // the week before it: one who got in turns on two-step verification or links a login
          // first and changes the address last (an attacker's probe did). What is older stays:
          // it is what keeps out someone who took the old mailbox after a change the owner made.
          const since = new Date(row.changed_at.getTime() - UNDO_DAYS * 86_400_000);
          await accounts.setEmail(tx, account.id, row.old_email, now());
          await accounts.clearPassword(tx, account.id, now());
          await changes.cancel(tx, account.id);
          // Links of later changes (an intruder's second change mailed their first address one)
          // go; a link of an earlier change, the owner's, stays usable.
          await changes.dropUndosSince(tx, account.id, row.changed_at);
          await u.resetTokens.deleteForAccount(tx, account.id);
          const twoStepRemoved = await u.twoStep.removeFactorConfirmedSince(tx, account.id, since);
          const loginsRemoved = (await u.identities.removeLinkedSince(tx, account.id, since)) + (await u.trelloMembers.cutGoogleSince(tx, account.id, since));
          const twoStepKept = !twoStepRemoved && (await u.twoStep.findFactor(account.id, tx))?.confirmed_at != null;
          const released = row.claimed_by && (await u.managers.releaseFromOrganization(tx, account.id, row.claimed_by)) ? row.claimed_by : undefined;
          const reset = await u.issueResetLink(tx, account.id);
          await outbox.enqueue(tx, {
            to: row.old_email,
            template: 'email-change-undone',
            data: { name: account.name, email: row.old_email, undoneEmail: account.email, resetLink: reset.link, minutes: reset.minutes, twoStepRemoved, twoStepKept, loginsRemoved: loginsRemoved > 0 },
          });
          await deps.events.record({
            type: 'email.change_undone',
            accountId: account.id,
            detail: { from: account.email, to: row.old_email, ...(twoStepRemoved ? { twoStepRemoved } : {}), ...(loginsRemoved ? { loginsRemoved } : {}), ...(released ? { organizationReleased: released } : {}) },
          }, meta, tx);
          return { accountId: account.id, email: row.old_email };
        });
        if (!result) return { ok: false, problem: 'email.undo_invalid' };
        await u.signOutEverywhere(result.accountId);
        outbox.kick();
        return { ok: true, ...result };
      } catch (err) {
        // The old address has another account since (an organization's admin made one, a company
        // sign-in did): nothing changed, the link is not spent.
        if ((err as { code?: string }).code === '23505') return { ok: false, problem: 'email.undo_taken' };
        throw err;
      }
    },
  };
}

/** A token as the links carry it (32 random bytes, base64url): anything else is no link of ours, without a lookup. */
function wellFormed(token: unknown): token is string {
  return typeof token === 'string' && token.length >= 20 && token.length <= 100;
}

export type EmailChangeService = ReturnType<typeof createEmailChangeService>;
