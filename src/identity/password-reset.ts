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
import { passwordMinLength, type Policy, type DenyReason, type Subject } from '../policy/policy.ts';
import type { AccountRow } from '../persistence/queries/accounts.ts';
import { asProof, type Reauthentication, type ProofInput } from './reauthentication.ts';
import { displayTime } from '../shared/display-time.ts';

export type ChangeResult =
  | { ok: true }
  | { ok: false; problem: PasswordProblem | 'password.current_wrong' | 'password.same' }
  | Exclude<Awaited<ReturnType<Reauthentication['confirm']>>, { ok: true } | { problem: 'password.current_wrong' }>;

export type ResetResult = { ok: true; accountId: string; email: string } | { ok: false; problem: PasswordProblem | 'reset.link_invalid' | DenyReason };

/** What a reset link leads to: the account whose password it sets, or why it sets none. */
export type LinkCheck = { ok: true; account: AccountRow; minLength: number } | { ok: false; problem: 'reset.link_invalid' | DenyReason };

/** Where an address on a domain that signs in through its company's identity provider goes instead. */
export interface CompanySignIn { connector: string; manager: string }

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
  /** The decision point: may a link be sent (`reset_request`), may it set a password (`reset_complete`). */
  decisions: Policy;
  /** Confirms a change in settings by a recent login or the current password. */
  reauthentication: Reauthentication;
}) {
  const { db, accounts, tokens, hasher, policy, outbox, clock, issuer } = deps;
  const now = () => new Date(clock.now());
  /** The shortest password allowed for this subject: the operator's, or its organization's policy's when longer. */
  const minLengthFor = (subject: Subject) => Math.max(policy.minLength, passwordMinLength(subject));

  /**
   * The "your password was changed" email, queued in the transaction that changed it.
   * `everywhere`: every session ended (a reset by email), not every one but the browser's own.
   */
  const notifyChanged = (tx: Queryable, account: { name: string | null; email: string }, everywhere = false) =>
    outbox.enqueue(tx, {
      to: account.email,
      template: 'password-changed',
      data: { name: account.name, email: account.email, when: displayTime(now()), resetLink: `${issuer}/password/forgot`, ...(everywhere ? { everywhere: true } : {}) },
    });

  /**
   * The account a link would reset, if the decision point lets a password be set on it now
   * (`reset_complete`): a link followed after the account was deactivated — or, later, moved to
   * its company's sign-in — sets nothing. A password-less account (Google, bulk migration) may:
   * the bulk migration's "set your password" mail is such a link.
   */
  /**
   * A new reset link for the account, replacing any earlier one, in the caller's transaction: the
   * address and how long it works, for the mail the caller queues.
   */
  async function issueLink(tx: Queryable, accountId: string): Promise<{ link: string; minutes: number }> {
    const token = randomSecret(32);
    await tokens.replace(tx, { tokenHash: sha256(token), accountId, now: now(), expiresAt: new Date(clock.now() + deps.ttlSeconds * 1000) });
    return { link: `${issuer}/password/reset?token=${token}`, minutes: Math.round(deps.ttlSeconds / 60) };
  }

  async function usableAccount(token: string): Promise<LinkCheck> {
    if (typeof token !== 'string' || token.length < 20 || token.length > 100) return { ok: false, problem: 'reset.link_invalid' };
    const row = await tokens.findUsable(sha256(token), now());
    const loaded = row ? await deps.decisions.load(row.account_id) : undefined;
    if (!loaded) return { ok: false, problem: 'reset.link_invalid' };
    const decision = deps.decisions.decide({ subject: loaded.subject, stage: 'reset_complete', method: 'email' });
    if (decision.outcome === 'allow') return { ok: true, account: loaded.account, minLength: minLengthFor(loaded.subject) };
    return { ok: false, problem: decision.outcome === 'deny' ? decision.reason : 'policy.method_not_allowed' };
  }

  return {
    /**
     * Sends a link to an active account; does nothing otherwise. Runs after the response (the
     * page is the same either way); the result, whether a link was sent, is for the caller's
     * follow-up only.
     */
    async request(emailInput: string): Promise<boolean> {
      const email = normalizeEmail(emailInput);
      if (!email) return false;
      // The decision point (`reset_request`): an active account gets a link, with or without a
      // password (Google, bulk migration); a deactivated or closed one gets nothing, not even an
      // explanation (docs/decisions/0027-reauthentication-by-any-method.md, "Reset requests").
      const { account, subject } = await deps.decisions.subjectForEmail(email);
      if (!account) return false;
      const decision = deps.decisions.decide({ subject, stage: 'reset_request', method: 'email' });
      if (decision.outcome !== 'allow') return false;
      await db.transaction(async (tx) => {
        const { link, minutes } = await issueLink(tx, account.id);
        await outbox.enqueue(tx, { to: account.email, template: 'password-reset', data: { name: account.name, email: account.email, link, minutes } });
      });
      outbox.kick();
      return true;
    },

    /** The account a link would reset, or why it resets none, for the "choose a new password" page. */
    check: usableAccount,

    issueLink,

    /**
     * Whether the address is on a domain whose organization signs its people in through its own
     * identity provider (the default policy requires SSO): the request page then says so instead
     * of "check your email", and no link is sent. Decided for the domain, never the account — every
     * address on it gets this answer, so it tells nothing about whether one has an account.
     */
    async companySignIn(email: string): Promise<CompanySignIn | undefined> {
      const decision = deps.decisions.decide({ subject: await deps.decisions.addressSubject(email), stage: 'reset_request', method: 'email' });
      return decision.outcome === 'use_connector' ? { connector: decision.connector, manager: decision.manager } : undefined;
    },

    /** The shortest password the account may set now (the settings page says it). */
    async minLengthOf(accountId: string): Promise<number> {
      const loaded = await deps.decisions.load(accountId);
      return loaded ? minLengthFor(loaded.subject) : policy.minLength;
    },

    /**
     * A login whose password is older than the account's policy allows sets a new one before it
     * goes on (decision 0039): the login proved the account already (every factor), so no other
     * proof is asked. The new password follows the account's rules and must differ from the old;
     * every other session ends, as with any password change.
     */
    async renew(accountId: string, next: string, keepSessionUid: string | undefined, meta: RequestMeta = {}): Promise<{ ok: true } | { ok: false; problem: PasswordProblem | 'password.same' | 'policy.account_inactive' }> {
      const loaded = await deps.decisions.load(accountId);
      if (!loaded || loaded.account.status !== 'active') return { ok: false, problem: 'policy.account_inactive' };
      const { account, subject } = loaded;
      const problem = policy.check(next, { email: account.email, name: account.name, minLength: minLengthFor(subject) });
      if (problem) return { ok: false, problem };
      if ((await hasher.verify(account.password_hash, next)).ok) return { ok: false, problem: 'password.same' };
      // The step's second hash: it waits its turn but is never refused (decision 0056), so a busy
      // answer cannot come after the old password was compared.
      const hash = await hasher.rehash(next);
      await db.transaction(async (tx) => {
        await accounts.setPassword(tx, account.id, hash, now());
        await tokens.deleteForAccount(tx, account.id);
        await notifyChanged(tx, account);
        await deps.events.record({ type: 'password.changed', accountId: account.id, detail: { expired: true } }, meta, tx);
      });
      await deps.signOutEverywhere(account.id, keepSessionUid);
      outbox.kick();
      return { ok: true };
    },

    /**
     * "Change password" in settings, confirmed by a recent login or the current password (the
     * decision point says which: docs/flows/settings.md); an account without a password (Google,
     * bulk migration) adds one the same way, without being asked for one it does not have.
     * Every other session ends (this one stays signed in) and a confirmation is sent.
     */
    async change(accountId: string, proofInput: ProofInput, next: string, keepSessionUid: string, meta: RequestMeta = {}): Promise<ChangeResult> {
      const proof = asProof(proofInput);
      const loaded = await deps.decisions.load(accountId);
      const account = loaded?.account;
      if (!account || account.status !== 'active') return { ok: false, problem: 'password.current_wrong' };
      const confirmed = await deps.reauthentication.confirm(account, proof);
      if (!confirmed.ok) return confirmed;
      if (proof.password && proof.password === next) return { ok: false, problem: 'password.same' };
      const problem = policy.check(next, { email: account.email, name: account.name, minLength: minLengthFor(loaded.subject) });
      if (problem) return { ok: false, problem };
      const typed = typeof proof.password === 'string' && proof.password.length > 0;
      // Confirmed by a recent login, nothing typed tells whether the "new" password is the one in
      // use: the stored hash does (as the expired-password step checks). Otherwise every other
      // session would end and a "password changed" mail go out for a change that is none.
      if (!typed && account.password_hash && (await hasher.verify(account.password_hash, next)).ok) return { ok: false, problem: 'password.same' };
      // After a first, refusable check — the current password typed (the real hash or a decoy:
      // reauthentication.ts), or the comparison with the stored one just above — a second hash,
      // never refused (decision 0056). An account adding its first password (confirmed by a
      // recent login alone) has had none: this is the step's first hash, refusable like any, so a
      // full hashing answers busy (decision 0063) instead of this form skipping the queue's bound.
      const hash = typed || account.password_hash ? await hasher.rehash(next) : await hasher.hash(next);
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
      const usable = await usableAccount(token);
      if (!usable.ok) return usable;
      const { account } = usable;
      const problem = policy.check(password, { email: account.email, name: account.name, minLength: usable.minLength });
      if (problem) return { ok: false, problem };
      const hash = await hasher.hash(password);
      const spent = await db.transaction(async (tx) => {
        const accountId = await tokens.spend(tx, sha256(token), now());
        if (accountId !== account.id) return false;
        await accounts.setPassword(tx, account.id, hash, now());
        await tokens.deleteForAccount(tx, account.id);
        await notifyChanged(tx, account, true);
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
