import { sha256 } from '../shared/crypto.ts';
import { randomSecret } from '../shared/ids.ts';
import type { Clock } from '../shared/clock.ts';
import type { PasswordResetQueries } from '../persistence/queries/password-reset-tokens.ts';
import type { AddressUse, TrelloMemberQueries, TrelloMemberRow } from '../persistence/queries/trello-members.ts';
import type { Outbox } from '../mail/outbox.ts';
import { chooseEmail, linkableEmails, rankEmails } from './email-choice.ts';
import type { TrelloLinking } from './linking.ts';
import type { Policy } from '../policy/policy.ts';

/**
 * The fourth way (docs/flows/trello-migration.md): every member still unlinked gets an account,
 * without a password, and an email explaining the change with a link to set one. Batched and
 * resumable: each member is linked in its own transaction, and a run started again continues
 * with the members still unlinked.
 *
 * The dry run goes through the same planner, in the same order, as the real run: each batch's
 * addresses are looked up at once (which are accounts' or retired), and the links planned
 * earlier in the run are remembered, so an address kept or retired by an earlier link is seen
 * as taken by the later members exactly as the real run meets it (decision 0020). It changes
 * nothing.
 */
export type BulkOutcome =
  | { memberId: string; action: 'link'; email: string; retire: string[] }
  | { memberId: string; action: 'conflict'; email: string | undefined; reason: string };

export interface BulkSummary {
  examined: number;
  linked: number;
  conflicts: number;
}

/** What the person of a conflicted member can actually do (docs/flows/trello-migration.md). */
export const CONFLICT = {
  noVerified: 'no verified address: the person logs in with a Trello address and the Trello password, then confirms an address by a code',
  taken: 'the address belongs to another account: logging in there (with that account\'s password or the Trello password) offers the link, asking for both passwords',
  /**
   * The decision point refuses linking to the account at the best address (`bulk_migration`):
   * it is deactivated or closed, and stays as its owner or operator left it.
   */
  refused: (why: string) => `the address belongs to an account that cannot take a Trello member now (${why}): support must reactivate it, or the person proves another address`,
  /**
   * Every verified address is an account's that already has a Trello member, or retired: no
   * link can keep one. The Trello password at a non-retired address still leads to the
   * member's own review, where a new address is proven by email.
   */
  noFreeAddress: (loginWith: string | undefined) => loginWith
    ? `no verified address is free (each belongs to an account that already has a Trello member, or was retired): the person logs in with ${loginWith} and the Trello password, then confirms a new address by email`
    : 'no verified address is free (each belongs to an account that already has a Trello member, or was retired), and no other address of the member can log in: support must decide',
} as const;

/** How long the "set your password" link of a migrated account works. */
export const SET_PASSWORD_TTL_SECONDS = 30 * 86_400;

export function createBulkMigration(deps: {
  linking: TrelloLinking;
  trelloMembers: TrelloMemberQueries;
  resetTokens: PasswordResetQueries;
  outbox: Outbox;
  clock: Clock;
  issuer: string;
  /** The decision point (`bulk_migration`): may a member be linked to this address's account, or get a new one? */
  decisions: Pick<Policy, 'decide' | 'subjectForEmail'>;
}) {
  const { linking, trelloMembers, clock, issuer } = deps;

  /** Why the account at an address may not take a member now, in the report's words; undefined when it may. */
  async function refusal(email: string, free: boolean): Promise<string | undefined> {
    // A free address (the batch's lookup found no account there) is asked about as a bare
    // address, with no statement; an account's is loaded with its policy columns.
    const subject = free ? { kind: 'address' as const, email } : (await deps.decisions.subjectForEmail(email)).subject;
    const decision = deps.decisions.decide({ subject, stage: 'bulk_migration', method: 'email' });
    if (decision.outcome === 'allow') return undefined;
    return decision.outcome === 'deny' && decision.reason === 'policy.account_inactive' ? 'deactivated or closed' : decision.outcome === 'deny' ? decision.reason : decision.outcome;
  }

  /**
   * Plans a batch, in member id order. `claimed` holds the addresses that links planned earlier
   * in this run keep or retire (lower-case): the database does not show them yet in a dry run,
   * nor, within a batch, in a real one.
   */
  async function planBatch(members: TrelloMemberRow[], claimed: Map<string, AddressUse>): Promise<BulkOutcome[]> {
    const used = await trelloMembers.addressesInUse([...new Set(members.flatMap((m) => m.emails.map((e) => e.email.toLowerCase())))]);
    const useOf = (email: string) => claimed.get(email.toLowerCase()) ?? used.get(email.toLowerCase());
    // The accounts at the chosen addresses are asked about one by one, only for these conflicts.
    const outcomes = members.map((member): BulkOutcome => {
      // Only a verified address: the set-password link goes to it, and whoever reads it gets the account.
      const verified = member.emails.filter((e) => e.verified);
      if (!verified.length) return { memberId: member.member_id, action: 'conflict', email: chooseEmail(member.emails)?.email, reason: CONFLICT.noVerified };
      // The best address a link can still keep: one of an account that already has a member,
      // or retired, never can; the next best is taken instead (docs/flows/trello-migration.md).
      const chosen = linkableEmails(verified, useOf)[0];
      if (!chosen) {
        // The Trello password works at any address that is not retired (an account's with a
        // member leads to the member's own review too): the best one is named.
        const loginWith = rankEmails(member.emails).find((e) => useOf(e.email) === undefined || useOf(e.email) === 'member')?.email;
        return { memberId: member.member_id, action: 'conflict', email: chooseEmail(verified)!.email, reason: CONFLICT.noFreeAddress(loginWith) };
      }
      // An account without a member has it: never linked without proof (decision 0013), so
      // the person proves that account at login.
      if (useOf(chosen.email) === 'account') return { memberId: member.member_id, action: 'conflict', email: chosen.email, reason: CONFLICT.taken };
      // What the link will do: the chosen address becomes the account's; the other verified
      // ones that are nobody's are retired for it (linking.ts, retireOthers).
      const retire = verified.map((e) => e.email).filter((e) => e !== chosen.email && !useOf(e));
      claimed.set(chosen.email.toLowerCase(), 'member');
      for (const e of retire) claimed.set(e.toLowerCase(), 'retired');
      return { memberId: member.member_id, action: 'link', email: chosen.email, retire };
    });
    // An account at the best address: the decision point says whether it may take a member at
    // all (a deactivated one may not, and its person cannot log in there to prove it either), so
    // the report names what actually works. A new account at a free address is the address's
    // answer (allowed; later an organization's domain may say otherwise).
    return Promise.all(outcomes.map(async (outcome): Promise<BulkOutcome> => {
      if (outcome.action === 'conflict' && outcome.reason === CONFLICT.taken && outcome.email) {
        const why = await refusal(outcome.email, false);
        return why ? { ...outcome, reason: CONFLICT.refused(why) } : outcome;
      }
      if (outcome.action === 'link') {
        const why = await refusal(outcome.email, true);
        return why ? { memberId: outcome.memberId, action: 'conflict', email: outcome.email, reason: CONFLICT.refused(why) } : outcome;
      }
      return outcome;
    }));
  }

  return {
    remaining: () => trelloMembers.countUnlinked(),

    async run(options: { dryRun: boolean; batchSize?: number; onOutcome?: (outcome: BulkOutcome) => void; onBatch?: (summary: BulkSummary) => void }): Promise<BulkSummary> {
      const summary: BulkSummary = { examined: 0, linked: 0, conflicts: 0 };
      const claimed = new Map<string, AddressUse>();
      let after = '';
      // Statistics of the tables the links fill, after the first batch that linked, each time
      // the links have grown tenfold since, and at the end (decision 0042).
      let analyzeAt = 1;
      const analyzeWhenGrown = async (force = false) => {
        if (options.dryRun || !summary.linked || (!force && summary.linked < analyzeAt)) return;
        await trelloMembers.analyzeLinked();
        analyzeAt = summary.linked * 10;
      };
      for (;;) {
        const batch = await trelloMembers.unlinkedBatch(after, options.batchSize ?? 200);
        if (!batch.length) break;
        after = batch.at(-1)!.member_id;
        const plans = await planBatch(batch, claimed);
        for (const [i, member] of batch.entries()) {
          summary.examined += 1;
          let outcome = plans[i]!;
          if (outcome.action === 'link' && !options.dryRun) {
            const token = randomSecret(32);
            const planned = outcome;
            const result = await linking.link({
              memberId: member.member_id,
              email: planned.email,
              method: 'bulk',
              inTransaction: async (tx, account) => {
                const now = new Date(clock.now());
                await deps.resetTokens.replace(tx, { tokenHash: sha256(token), accountId: account.id, now, expiresAt: new Date(clock.now() + SET_PASSWORD_TTL_SECONDS * 1000) });
                await deps.outbox.enqueue(tx, {
                  to: account.email,
                  template: 'trello-migrated',
                  // Links are built from the configured issuer, whatever process queues the message.
                  data: { name: account.name, email: account.email, username: member.username, link: `${issuer}/password/reset?token=${token}`, days: SET_PASSWORD_TTL_SECONDS / 86_400, retired: planned.retire },
                });
              },
            });
            if (!result.ok) outcome = { memberId: member.member_id, action: 'conflict', email: planned.email, reason: result.problem };
          }
          if (outcome.action === 'link') summary.linked += 1;
          else summary.conflicts += 1;
          options.onOutcome?.(outcome);
        }
        // A real run's links are in the database now, where the next batch's lookup finds them.
        if (!options.dryRun) claimed.clear();
        await analyzeWhenGrown();
        options.onBatch?.(summary);
      }
      await analyzeWhenGrown(true);
      if (!options.dryRun && summary.linked) deps.outbox.kick();
      return summary;
    },
  };
}

export type BulkMigration = ReturnType<typeof createBulkMigration>;
