import type { Database, Queryable } from '../persistence/db.ts';
import type { AccountQueries } from '../persistence/queries/accounts.ts';
import type { PasswordResetQueries } from '../persistence/queries/password-reset-tokens.ts';
import type { Outbox } from '../mail/outbox.ts';
import type { Clock } from '../shared/clock.ts';
import { sha256 } from '../shared/crypto.ts';
import { randomSecret } from '../shared/ids.ts';
import { normalizeEmail } from './email-address.ts';
import type { PasswordHasher } from './password-hasher.ts';
import type { PasswordPolicy, PasswordProblem } from './password-policy.ts';
import type { RequestMeta, SecurityEvents } from './security-events.ts';

export type ChangeResult = { ok: true } | { ok: false; problem: PasswordProblem | 'password.current_wrong' | 'password.same' };

export type ResetResult = { ok: true; accountId: string; email: string } | { ok: false; problem: PasswordProblem | 'reset.link_invalid' };

/**
 * "Forgot password?" (docs/flows/password-reset.md). A link holds 256 random bits; only their
 * SHA-256 is stored, it works once, for `ttlSeconds`, and a newer request replaces it. Setting the
 * password spends the link, stores the new hash and queues a confirmation in one transaction;
 * then every session and grant of the account is ended (`signOutEverywhere`), so the old
 * password's sessions die and relying parties get back-channel logout.
 */
export function createPasswordResetService(deps: {
  db: Database;
  accounts: AccountQueries;
  tokens: PasswordResetQueries;
  hasher: PasswordHasher;
  policy: PasswordPolicy;
  outbox: Outbox;
  clock: Clock;
  issuer: string;
  ttlSeconds: number;
  signOutEverywhere: (accountId: string, keepSessionUid?: string) => Promise<unknown>;
  events: SecurityEvents;
}) {
  const { db, accounts, tokens, hasher, policy, outbox, clock, issuer } = deps;
  const now = () => new Date(clock.now());

  /** The "your password was changed" email, queued in the transaction that changed it. */
  const notifyChanged = (tx: Queryable, account: { name: string | null; email: string }) =>
    outbox.enqueue(tx, {
      to: account.email,
      template: 'password-changed',
      data: { name: account.name, email: account.email, when: now().toUTCString(), resetLink: `${issuer}/password/forgot` },
    });

  async function usableAccount(token: string) {
    if (typeof token !== 'string' || token.length < 20 || token.length > 100) return undefined;
    const row = await tokens.findUsable(sha256(token), now());
    const account = row ? await accounts.findById(row.account_id) : undefined;
    return account?.status === 'active' ? account : undefined;
  }

  return {
    /**
     * Sends a link to an active account; does nothing otherwise. Runs after the response (the
     * page is the same either way); the result, whether a link was sent, is for the caller's
     * follow-up only.
     */
    async request(emailInput: string): Promise<boolean> {
      const email = normalizeEmail(emailInput);
      const account = email ? await accounts.findByEmail(email) : undefined;
      if (!account || account.status !== 'active') return false;
      const token = randomSecret(32);
      await db.transaction(async (tx) => {
        await tokens.replace(tx, { tokenHash: sha256(token), accountId: account.id, now: now(), expiresAt: new Date(clock.now() + deps.ttlSeconds * 1000) });
        await outbox.enqueue(tx, {
          to: account.email,
          template: 'password-reset',
          data: { name: account.name, email: account.email, link: `${issuer}/password/reset?token=${token}`, minutes: Math.round(deps.ttlSeconds / 60) },
        });
      });
      outbox.kick();
      return true;
    },

    /** The account a link would reset, for the "choose a new password" page. */
    check: usableAccount,

    /**
     * "Change password" in settings: the current password is required; every other session ends
     * (this one stays signed in) and a confirmation is sent.
     */
    async change(accountId: string, current: string, next: string, keepSessionUid: string, meta: RequestMeta = {}): Promise<ChangeResult> {
      const account = await accounts.findById(accountId);
      if (!account || account.status !== 'active') return { ok: false, problem: 'password.current_wrong' };
      const check = await hasher.verify(account.password_hash, current);
      if (!check.ok) return { ok: false, problem: 'password.current_wrong' };
      if (current === next) return { ok: false, problem: 'password.same' };
      const problem = policy.check(next, { email: account.email, name: account.name });
      if (problem) return { ok: false, problem };
      const hash = await hasher.hash(next);
      await db.transaction(async (tx) => {
        await accounts.setPassword(tx, account.id, hash, now());
        await tokens.deleteForAccount(tx, account.id);
        await notifyChanged(tx, account);
        await deps.events.record({ type: 'password.changed', accountId: account.id }, meta, tx);
      });
      await deps.signOutEverywhere(account.id, keepSessionUid);
      outbox.kick();
      return { ok: true };
    },

    async reset(token: string, password: string, meta: RequestMeta = {}): Promise<ResetResult> {
      const account = await usableAccount(token);
      if (!account) return { ok: false, problem: 'reset.link_invalid' };
      const problem = policy.check(password, { email: account.email, name: account.name });
      if (problem) return { ok: false, problem };
      const hash = await hasher.hash(password);
      const spent = await db.transaction(async (tx) => {
        const accountId = await tokens.spend(tx, sha256(token), now());
        if (accountId !== account.id) return false;
        await accounts.setPassword(tx, account.id, hash, now());
        await tokens.deleteForAccount(tx, account.id);
        await notifyChanged(tx, account);
        await deps.events.record({ type: 'password.reset', accountId: account.id }, meta, tx);
        return true;
      });
      if (!spent) return { ok: false, problem: 'reset.link_invalid' };
      await deps.signOutEverywhere(account.id);
      outbox.kick();
      return { ok: true, accountId: account.id, email: account.email };
    },
  };
}

export type PasswordResetService = ReturnType<typeof createPasswordResetService>;
