import type { Clock } from '../shared/clock.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import type { Database, Queryable } from '../persistence/db.ts';
import type { AccountQueries, AccountRow } from '../persistence/queries/accounts.ts';
import type { AccountIdentityQueries } from '../persistence/queries/account-identities.ts';
import type { RetiredEmailQueries } from '../persistence/queries/retired-emails.ts';
import type { TrelloLinkEventQueries } from '../persistence/queries/trello-link-events.ts';
import type { TrelloMemberQueries, TrelloMemberRow } from '../persistence/queries/trello-members.ts';
import type { Outbox } from '../mail/outbox.ts';
import { normalizeEmail } from '../identity/email-address.ts';
import type { PasswordHasher } from '../identity/password-hasher.ts';
import type { RequestMeta, SecurityEvents } from '../identity/security-events.ts';
import { displayTime } from '../shared/display-time.ts';

/**
 * Linking a legacy Trello member to a provider account (docs/flows/trello-migration.md).
 *
 * Everything a link changes happens in one transaction, with the member row locked: the account
 * is created (or the existing one proven by the caller is used), the other addresses are retired
 * for it, the member is marked linked (its Trello password never works again), a Google identity is
 * attached, and the "member linked" event for Trello is queued. A process killed at any point
 * leaves the old state or the new one. There is no unlink.
 */
export type { TrelloMemberRow };

export type LinkMethod = 'password' | 'google' | 'manual' | 'bulk' | 'sso';

export interface LinkPlan {
  memberId: string;
  /** The address the account keeps; must be one of the member's (or, with `verifiedElsewhere`, a newly verified one). */
  email: string;
  method: LinkMethod;
  /** argon2id hash for a new account (the Trello password re-hashed); none for bulk and Google. */
  passwordHash?: string | null;
  /** Link to this existing account, whose ownership the caller has proven. */
  existingAccountId?: string;
  google?: { sub: string; email: string | null };
  /** The address was verified by a code just now ("I can't use the address on my account"). */
  verifiedElsewhere?: boolean;
  /** More work that must commit or roll back with the link (the bulk migration's email). */
  inTransaction?: (tx: Queryable, account: AccountRow, member: TrelloMemberRow) => Promise<void>;
}

export type LinkResult =
  | { ok: true; account: AccountRow; created: boolean; retired: string[] }
  | { ok: false; problem: 'trello.already_linked' | 'trello.email_taken' | 'trello.email_retired' | 'trello.email_not_theirs' | 'trello.account_unusable' | 'trello.account_has_member' };

/** What `bcryptjs` accepts: the $2a$, $2b$ and $2y$ variants, cost 4–31. */
export const BCRYPT_HASH = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

export function createTrelloLinking(deps: {
  db: Database;
  trelloMembers: TrelloMemberQueries;
  retiredEmails: RetiredEmailQueries;
  identities: AccountIdentityQueries;
  linkEvents: TrelloLinkEventQueries;
  accounts: AccountQueries;
  hasher: PasswordHasher;
  outbox: Outbox;
  events: SecurityEvents;
  clock: Clock;
  issuer: string;
}) {
  const { db, trelloMembers, retiredEmails, identities, linkEvents, accounts, events, clock } = deps;
  const now = () => new Date(clock.now());

  async function link(plan: LinkPlan, meta: RequestMeta = {}): Promise<LinkResult> {
    const email = normalizeEmail(plan.email);
    if (!email) return { ok: false, problem: 'trello.email_not_theirs' };
    try {
      const result = await db.transaction(async (tx): Promise<LinkResult> => {
        const member = await trelloMembers.findByMemberId(plan.memberId, tx, true);
        if (!member) throw new AppError('trello.unknown_member', 404);
        if (member.linked_account_id) return { ok: false, problem: 'trello.already_linked' };
        // Only a verified Trello address is the member's: an unverified one may be anybody's.
        const own = member.emails.find((e) => e.email.toLowerCase() === email && e.verified);
        if (!own && !plan.verifiedElsewhere && !plan.existingAccountId) return { ok: false, problem: 'trello.email_not_theirs' };

        let account: AccountRow | undefined;
        let created = false;
        if (plan.existingAccountId) {
          account = await accounts.findById(plan.existingAccountId, tx);
          if (!account || account.status !== 'active') return { ok: false, problem: 'trello.account_unusable' };
          if (await trelloMembers.findByAccountId(account.id, tx)) return { ok: false, problem: 'trello.account_has_member' };
        } else {
          const { rows } = await tx.query('SELECT 1 FROM accounts WHERE lower(email) = lower($1)', [email]);
          if (rows.length) return { ok: false, problem: 'trello.email_taken' };
          if (await accounts.isRetired(email, tx)) return { ok: false, problem: 'trello.email_retired' };
          account = await accounts.insertWith(tx, {
            id: newId('acc'),
            email,
            emailVerified: Boolean(own || plan.verifiedElsewhere || (plan.google && plan.google.email?.toLowerCase() === email)),
            name: member.full_name,
            nickname: member.username,
            passwordHash: plan.passwordHash ?? null,
          });
          created = true;
        }
        const retired = await retireOthers(tx, member, account);
        if (!(await trelloMembers.markLinked(tx, member.member_id, account.id, plan.method, now()))) return { ok: false, problem: 'trello.already_linked' };
        // The member's Trello Enterprise manages the account from the link on (decision 0030):
        // its restrictions hold after linking as before.
        await trelloMembers.syncEnterpriseManagers(tx, [member.member_id], now());
        // The Google login that proved this link; or, for a new account, the member's own Google
        // sign-in. Never the member's stored Google subject on an existing account: whoever
        // controls that member must not gain a way into somebody else's account.
        const google = plan.google ?? (created && member.google_sub ? { sub: member.google_sub, email: member.google_email } : undefined);
        if (google) await identities.addIdentity(tx, { provider: 'google', subject: google.sub, accountId: account.id, email: google.email, now: now() });
        await linkEvents.enqueueLinkEvent(tx, member.member_id, account.id, now());
        await events.record({ type: 'trello.linked', accountId: account.id, detail: { memberId: member.member_id, method: plan.method, created, retired: retired.length } }, meta, tx);
        await plan.inTransaction?.(tx, account, member);
        return { ok: true, account, created, retired };
      });
      return result;
    } catch (err) {
      // The address was taken by a concurrent sign-up or link: the unique index decided.
      if ((err as { code?: string }).code === '23505') return { ok: false, problem: 'trello.email_taken' };
      throw err;
    }
  }

  /**
   * Retires the member's other *verified* addresses for `account`: reserved for it, refused at
   * login. An unverified one is dropped, not reserved: it may be somebody else's. An address that
   * is another account's, or already retired for one, is that account's and stays so.
   */
  async function retireOthers(tx: Queryable, member: TrelloMemberRow, account: AccountRow): Promise<string[]> {
    const others = member.emails.filter((e) => e.verified).map((e) => e.email.toLowerCase()).filter((e) => e !== account.email.toLowerCase());
    if (!others.length) return [];
    const { rows } = await tx.query<{ email: string }>(
      `SELECT e AS email FROM unnest($1::text[]) AS e
       WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE lower(a.email) = lower(e))
         AND NOT EXISTS (SELECT 1 FROM retired_emails r WHERE lower(r.email) = lower(e))`,
      [others],
    );
    const free = rows.map((r) => r.email);
    await retiredEmails.retire(tx, account.id, free, `trello:${member.member_id}`, now());
    return free;
  }

  return {
    link,

    /**
     * Someone typed a retired address at login: no login, and every address of the account
     * (the current one and all retired ones) is told which address to use from now on.
     */
    async notifyRetiredUse(tried: string, accountId: string, meta: RequestMeta = {}): Promise<void> {
      const account = await accounts.findById(accountId);
      if (!account || account.status !== 'active') return;
      const addresses = [account.email, ...(await retiredEmails.retiredOf(account.id))];
      await db.transaction(async (tx) => {
        for (const to of addresses) {
          await deps.outbox.enqueue(tx, {
            to,
            template: 'retired-email-used',
            data: { name: account.name, tried, email: account.email, when: displayTime(now()), resetLink: `${deps.issuer}/password/forgot` },
          });
        }
        await events.record({ type: 'login.retired_email', accountId: account.id, detail: { tried } }, meta, tx);
      });
      deps.outbox.kick();
    },

    /** A code proving a new address ("I can't use the address on my account"), mailed to it. */
    async sendAddressCode(email: string, code: string, username: string): Promise<void> {
      await db.transaction((tx) => deps.outbox.enqueue(tx, { to: email, template: 'trello-verify-email', data: { code, username } }));
      deps.outbox.kick();
    },

    /**
     * Checks a Trello password against the imported bcrypt hash (constant-time inside bcrypt).
     * For a linked member this only recognises the old password, to say it no longer works.
     * `first`: the step's first hash, refused when the hashing is full (`compareLegacy`).
     */
    async checkLegacyPassword(member: TrelloMemberRow | undefined, password: string, options: { first?: boolean } = {}): Promise<boolean> {
      if (!member?.password_hash) {
        // Same cost either way, so the time does not tell whether a member or a hash exists.
        await deps.hasher.compareLegacy(undefined, password, options);
        return false;
      }
      return deps.hasher.compareLegacy(member.password_hash, password, options);
    },


    /**
     * The unlinked members an address may log in to with a Trello password, in the order that
     * decides when two passwords would match: those that verified the address first, then by
     * member id (decision 0019). `verifiedOnly` leaves out the others.
     */
    async candidatesFor(email: string, options: { verifiedOnly?: boolean } = {}): Promise<TrelloMemberRow[]> {
      const normalized = normalizeEmail(email);
      if (!normalized) return [];
      const verified = (m: TrelloMemberRow) => m.emails.some((e) => e.email.toLowerCase() === normalized && e.verified);
      return (await trelloMembers.findByEmail(normalized))
        .filter((m) => !m.linked_account_id && (!options.verifiedOnly || verified(m)))
        .sort((a, b) => Number(verified(b)) - Number(verified(a)) || (a.member_id < b.member_id ? -1 : a.member_id > b.member_id ? 1 : 0));
    },

    /**
     * Which of `members` the Trello password opens. Every one is checked, whichever matches (or
     * one decoy when there is none), so the time does not tell which member it was, nor whether
     * one matched; the first in the given order wins when several do.
     */
    async matchLegacyPassword(members: readonly TrelloMemberRow[], password: string, options: { first?: boolean } = {}): Promise<TrelloMemberRow | undefined> {
      if (!members.length) {
        await deps.hasher.compareLegacy(undefined, password, options);
        return undefined;
      }
      // `first` (the step's first hash, refusable: decision 0063) goes to the first compare
      // only; the others belong to the same admitted step. A full hashing refuses the step
      // before any compare starts (nothing runs in between: this is one tick).
      if (options.first && deps.hasher.full()) return deps.hasher.compareLegacy(undefined, password, options).then(() => undefined);
      const compare = (m: TrelloMemberRow, i: number) => deps.hasher.compareLegacy(m.password_hash, password, { first: i === 0 && options.first === true });
      const results = await Promise.all(members.map((m, i) => (m.password_hash ? compare(m, i) : compare(m, i).then(() => false))));
      return members.find((_, i) => results[i]);
    },

    linkableByAccount: (accountId: string, email: string) => trelloMembers.linkableByAccount(accountId, email),
    addressesInUse: (emails: string[]) => trelloMembers.addressesInUse(emails.map((e) => e.toLowerCase())),
    findByMemberId: (id: string) => trelloMembers.findByMemberId(id),
    findByEmail: (email: string) => trelloMembers.findByEmail(email),
    findByGoogleSub: (sub: string) => trelloMembers.findByGoogleSub(sub),
    /** By one of its addresses or its Trello username, as people type either. */
    async findByLogin(login: string): Promise<TrelloMemberRow | undefined> {
      const email = normalizeEmail(login);
      if (email) {
        const members = await trelloMembers.findByEmail(email);
        return members.find((m) => !m.linked_account_id) ?? members[0];
      }
      return login.length <= 100 ? trelloMembers.findByUsername(login.trim()) : undefined;
    },
    findByAccountId: (id: string) => trelloMembers.findByAccountId(id),
    memberIdOf: (accountId: string) => trelloMembers.memberIdOf(accountId),
    findRetired: (email: string) => retiredEmails.findRetired(email),
    memberByOwnedEmail: (email: string) => trelloMembers.memberByOwnedEmail(email),
    retiredOf: (accountId: string) => retiredEmails.retiredOf(accountId),
  };
}

export type TrelloLinking = ReturnType<typeof createTrelloLinking>;
