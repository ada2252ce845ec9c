import type { Database, Queryable } from '../persistence/db.ts';
import type { AccountQueries, AccountRow } from '../persistence/queries/accounts.ts';
import type { EmailChangeQueries } from '../persistence/queries/email-changes.ts';
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
          await accounts.setEmail(tx, before.id, change.new_email, now());
          await outbox.enqueue(tx, {
            to: before.email,
            template: 'email-changed',
            data: { name: before.name, oldEmail: before.email, newEmail: change.new_email, resetLink: `${issuer}/password/forgot` },
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
  };
}

/** A token as the links carry it (32 random bytes, base64url): anything else is no link of ours, without a lookup. */
function wellFormed(token: unknown): token is string {
  return typeof token === 'string' && token.length >= 20 && token.length <= 100;
}

export type EmailChangeService = ReturnType<typeof createEmailChangeService>;
