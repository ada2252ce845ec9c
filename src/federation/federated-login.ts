import type { Clock } from '../shared/clock.ts';
import { newId } from '../shared/ids.ts';
import type { Database } from '../persistence/db.ts';
import type { AccountQueries, AccountRow } from '../persistence/queries/accounts.ts';
import type { AccountIdentityQueries } from '../persistence/queries/account-identities.ts';
import type { RetiredEmailQueries } from '../persistence/queries/retired-emails.ts';
import type { TrelloMemberQueries, TrelloMemberRow } from '../persistence/queries/trello-members.ts';
import { normalizeEmail } from '../identity/email-address.ts';
import type { RequestMeta, SecurityEvents } from '../identity/security-events.ts';
import { rankEmails } from '../legacy-trello/email-choice.ts';
import type { TrelloLinking } from '../legacy-trello/linking.ts';

/**
 * Which account a "Continue with Google" login belongs to (docs/flows/trello-migration.md,
 * path 2), in this order:
 *
 * 1. an account already linked to this Google subject;
 * 2. an unlinked Trello member with this Google subject, or with Google's *verified* address:
 *    migrated automatically, without questions — the account keeps the member's best address
 *    that is free, or is linked to the account that has Google's verified address (Google
 *    proved the person owns it);
 * 3. an account whose address is Google's verified address (and verified here too): the identity
 *    is linked to it;
 * 4. otherwise a new account with Google's verified address, without a password.
 *
 * An unverified Google address never links or creates anything, and a retired address never
 * logs in (its owner is told which address to use, as at the password step).
 */
export type FederatedResult =
  | { ok: true; account: AccountRow; how: 'identity' | 'trello' | 'email' | 'created' }
  | { ok: false; problem: 'google.email_unverified' | 'google.conflict' | 'google.two_step_first' }
  | { ok: false; problem: 'google.email_retired'; retiredFor: string; email: string };

export function createFederatedLogin(deps: {
  db: Database;
  accounts: AccountQueries;
  identities: AccountIdentityQueries;
  retiredEmails: RetiredEmailQueries;
  trelloMembers: TrelloMemberQueries;
  linking: TrelloLinking;
  events: SecurityEvents;
  clock: Clock;
}) {
  const { db, accounts, identities, retiredEmails, trelloMembers, linking } = deps;
  const now = () => new Date(deps.clock.now());

  /**
   * The account a known Google identity belongs to, whatever its state: whether it may sign in
   * (deactivated, closed within its grace period) is the decision point's answer, asked by the
   * login's completion service.
   */
  async function known(accountId: string): Promise<FederatedResult> {
    const account = await accounts.findById(accountId);
    // Identities are removed with their account (erasure): a dangling one is a conflict to look into.
    return account ? { ok: true, account, how: 'identity' } : { ok: false, problem: 'google.conflict' };
  }

  async function migrate(member: TrelloMemberRow, google: { sub: string; email: string | null }, verifiedEmail: string | undefined, meta: RequestMeta): Promise<FederatedResult> {
    // Google's verified address, when it is an account's (verified there too), proves that
    // account is the person's.
    const owner = verifiedEmail ? await accounts.findByEmail(verifiedEmail) : undefined;
    if (owner && !owner.email_verified) return { ok: false, problem: 'google.conflict' };
    // A link is for good, and this runs before the second step: an account with one links its
    // Trello account from Settings → Trello after a full login instead.
    if (owner?.two_step_enabled) return { ok: false, problem: 'google.two_step_first' };
    if (owner) {
      const linked = await linking.link({ memberId: member.member_id, email: owner.email, method: 'google', existingAccountId: owner.id, google }, meta);
      return linked.ok ? { ok: true, account: linked.account, how: 'trello' } : { ok: false, problem: 'google.conflict' };
    }
    for (const candidate of rankEmails(member.emails).filter((e) => e.verified)) {
      if ((await accounts.findByEmail(candidate.email)) || (await accounts.isRetired(candidate.email))) continue;
      const linked = await linking.link({ memberId: member.member_id, email: candidate.email, method: 'google', google }, meta);
      if (linked.ok) return { ok: true, account: linked.account, how: 'trello' };
      if (linked.problem !== 'trello.email_taken') break;
    }
    return { ok: false, problem: 'google.conflict' };
  }

  return {
    async resolveGoogle(claims: { sub: string; email: string | undefined; emailVerified: boolean; name: string | undefined }, meta: RequestMeta = {}): Promise<FederatedResult> {
      const identity = await identities.findIdentity('google', claims.sub);
      if (identity) return known(identity.account_id);

      const email = claims.email ? normalizeEmail(claims.email) : undefined;
      const verifiedEmail = claims.emailVerified ? email : undefined;
      const google = { sub: claims.sub, email: email ?? null };

      if (verifiedEmail) {
        const retired = await retiredEmails.findRetired(verifiedEmail);
        if (retired) return { ok: false, problem: 'google.email_retired', retiredFor: retired.account_id, email: verifiedEmail };
      }

      const bySub = await trelloMembers.findByGoogleSub(claims.sub);
      if (bySub?.linked_account_id) return known(bySub.linked_account_id);
      // By address only when the member verified it at Trello as Google did: an unverified
      // address on a member proves nothing about who owns it.
      const member = bySub ?? (verifiedEmail ? (await trelloMembers.findByVerifiedEmail(verifiedEmail)).find((m) => !m.linked_account_id) : undefined);
      if (member) return migrate(member, google, verifiedEmail, meta);

      if (!verifiedEmail) return { ok: false, problem: 'google.email_unverified' };
      const existing = await accounts.findByEmail(verifiedEmail);
      if (existing) {
        // An address nobody verified on our side proves nothing: its owner logs in with the password.
        if (!existing.email_verified) return { ok: false, problem: 'google.conflict' };
        // Nothing is attached to an account that is not active: the completion service asks the
        // decision point, which refuses it (or reopens a closure within its grace period; the
        // identity is linked at the next login then).
        if (existing.status !== 'active') return { ok: true, account: existing, how: 'email' };
        await db.transaction(async (tx) => {
          await identities.addIdentity(tx, { provider: 'google', subject: claims.sub, accountId: existing.id, email: verifiedEmail, now: now() });
          await deps.events.record({ type: 'identity.linked', accountId: existing.id, detail: { provider: 'google' } }, meta, tx);
        });
        return { ok: true, account: existing, how: 'email' };
      }
      try {
        const account = await db.transaction(async (tx) => {
          const created = await accounts.insertWith(tx, { id: newId('acc'), email: verifiedEmail, emailVerified: true, name: claims.name ?? null, passwordHash: null });
          await identities.addIdentity(tx, { provider: 'google', subject: claims.sub, accountId: created.id, email: verifiedEmail, now: now() });
          await deps.events.record({ type: 'identity.linked', accountId: created.id, detail: { provider: 'google', created: true } }, meta, tx);
          return created;
        });
        return { ok: true, account, how: 'created' };
      } catch (err) {
        // Two first logins racing: the other one created the account; use it.
        if ((err as { code?: string }).code === '23505') {
          const raced = await identities.findIdentity('google', claims.sub);
          if (raced) return known(raced.account_id);
        }
        throw err;
      }
    },
  };
}

export type FederatedLogin = ReturnType<typeof createFederatedLogin>;
