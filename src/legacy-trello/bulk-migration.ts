import { sha256 } from '../shared/crypto.ts';
import { newId, randomSecret } from '../shared/ids.ts';
import type { Database } from '../persistence/db.ts';
import { BulkLinkRace, type BulkLink, type LockedMember, type TrelloBulkLinkQueries } from '../persistence/queries/trello-bulk-links.ts';
import { normalizeEmail } from '../identity/email-address.ts';
import type { Clock } from '../shared/clock.ts';
import type { PasswordResetQueries } from '../persistence/queries/password-reset-tokens.ts';
import type { AddressUse, TrelloMemberQueries, TrelloMemberRow } from '../persistence/queries/trello-members.ts';
import type { Outbox, PreparedMail } from '../mail/outbox.ts';
import { chooseEmail, linkableEmails, rankEmails } from './email-choice.ts';
import type { TrelloLinking } from './linking.ts';
import type { Policy } from '../policy/policy.ts';

/**
 * The fourth way (docs/flows/trello-migration.md): every member still unlinked gets an account,
 * without a password, and an email explaining the change with a link to set one. Batched and
 * resumable: a batch's links are written in one transaction with a few multi-row statements
 * (each member fully linked or untouched, as `linking.link` leaves it), and a run started again
 * continues with the members still unlinked. A batch whose transaction meets a change made since
 * it was planned, and the rare link the batch write does not handle, go through `linking.link`
 * one member at a time, exactly as before.
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

/**
 * How a batch's links were written: `together` in the batch's one transaction, `alone` each in
 * its own (`linking.link`); `retried` when the batch's transaction met a change made since the
 * plan and its links were all written alone.
 */
export interface BatchWrite {
  together: number;
  alone: number;
  retried: boolean;
}

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
  db: Database;
  bulkLinks: TrelloBulkLinkQueries;
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
   * Plans a batch, in member id order. `claimed` receives the addresses that its links keep or
   * retire (lower-case), and `earlier` holds those of links planned earlier in this run that the
   * database may not show yet: all of them in a dry run; in a real one, those of the batch still
   * being written while this one is planned. Within a batch, `claimed` is what the database
   * does not show yet either.
   */
  async function planBatch(members: TrelloMemberRow[], claimed: Map<string, AddressUse>, earlier?: ReadonlyMap<string, AddressUse>): Promise<BulkOutcome[]> {
    const used = await trelloMembers.addressesInUse([...new Set(members.flatMap((m) => m.emails.map((e) => e.email.toLowerCase())))]);
    const useOf = (email: string) => claimed.get(email.toLowerCase()) ?? earlier?.get(email.toLowerCase()) ?? used.get(email.toLowerCase());
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

  /** Everything `linking.link` needs besides the plan: the set-password token and its email, in the link's transaction. */
  function linkOne(member: TrelloMemberRow, planned: BulkOutcome & { action: 'link' }): Promise<BulkOutcome> {
    const token = randomSecret(32);
    return linking.link({
      memberId: member.member_id,
      email: planned.email,
      method: 'bulk',
      inTransaction: async (tx, account) => {
        const now = new Date(clock.now());
        await deps.resetTokens.replace(tx, { tokenHash: sha256(token), accountId: account.id, now, expiresAt: new Date(clock.now() + SET_PASSWORD_TTL_SECONDS * 1000) });
        await deps.outbox.enqueue(tx, { to: account.email, template: 'trello-migrated', data: mailData(account.name, account.email, member.username, token, planned.retire) });
      },
    }).then((result) => (result.ok ? planned : { memberId: member.member_id, action: 'conflict', email: planned.email, reason: result.problem }));
  }

  /** The "your Trello account now signs in with Lanyard" message; links are built from the configured issuer, whatever process queues it. */
  const mailData = (name: string | null, email: string, username: string, token: string, retired: string[]) =>
    ({ name, email, username, link: `${issuer}/password/reset?token=${token}`, days: SET_PASSWORD_TTL_SECONDS / 86_400, retired });

  /**
   * Whether the batch write does exactly what `linking.link` would for this planned link: the
   * address is stored as planned once normalised (lower-case), and the retired addresses are the
   * plan's, each once. Any oddity (an address that normalises otherwise, two spellings of one
   * address) goes through `linking.link`, which decides as it always did.
   */
  function batchable(planned: BulkOutcome & { action: 'link' }): boolean {
    const email = normalizeEmail(planned.email);
    if (!email || email !== planned.email.toLowerCase()) return false;
    const all = [email, ...planned.retire.map((e) => e.toLowerCase())];
    return new Set(all).size === all.length;
  }

  /** The member as read for the plan, in the shape `lockMembers` gives it back: equal unless it changed since. */
  const sameAsRead = (member: TrelloMemberRow, now: LockedMember) => {
    const time = (d: Date | string | null) => (d === null ? null : new Date(d).getTime());
    const emails = (list: { email: string; verified: boolean; is_primary: boolean; last_used_at: Date | string | null; added_at: Date | string | null }[]) =>
      JSON.stringify([...list].sort((a, b) => (a.email < b.email ? -1 : a.email > b.email ? 1 : 0)).map((e) => [e.email, e.verified, e.is_primary, time(e.last_used_at), time(e.added_at)]));
    return !now.linked && member.username === now.username && member.full_name === now.full_name && member.google_sub === now.google_sub
      && member.google_email === now.google_email && member.enterprise_id === now.enterprise_id && member.enterprise_name === now.enterprise_name
      && emails(member.emails) === emails(now.emails);
  };

  /**
   * Links a batch's planned members in one transaction with a handful of multi-row statements
   * (issue 14: one transaction of 15–17 statements per member capped the run at about 250
   * members/s). The members are locked and compared with what the plan read, and their
   * addresses checked free again, inside the transaction: anything that changed since (a
   * re-import, a login that linked one, a sign-up that took an address) rolls the whole batch
   * back, and false tells the caller to link its members one by one instead.
   */
  async function linkBatch(prepared: PreparedBatch): Promise<boolean> {
    const { pairs, links, mails, now } = prepared;
    try {
      await deps.db.transaction(async (tx) => {
        const locked = await deps.bulkLinks.lockMembers(tx, links.map((l) => l.memberId));
        if (pairs.some(([member]) => !locked.has(member.member_id) || !sameAsRead(member, locked.get(member.member_id)!))) throw new BulkLinkRace();
        if ((await deps.bulkLinks.taken(tx, links.flatMap((l) => [l.email, ...l.retire]))).length) throw new BulkLinkRace();
        await deps.bulkLinks.write(tx, links, now, new Date(now.getTime() + SET_PASSWORD_TTL_SECONDS * 1000));
        // The members' Trello Enterprises manage their accounts from the link on (decision 0030).
        await trelloMembers.syncEnterpriseManagers(tx, links.map((l) => l.memberId), now);
        await deps.outbox.enqueuePrepared(tx, mails);
      });
      return true;
    } catch (err) {
      // Integrity (23…: an address taken or retired meanwhile), serialization or deadlock (40…):
      // the batch is linked member by member. Anything else (the database is gone) stops the run.
      const code = (err as { code?: unknown }).code;
      if (err instanceof BulkLinkRace || (typeof code === 'string' && (code.startsWith('23') || code.startsWith('40')))) return false;
      throw err;
    }
  }

  /**
   * What the batch write stores, made before its transaction (ids, set-password tokens, the
   * rendered and sealed messages): the next batch is prepared while one is being written.
   */
  function prepareBatch(pairs: [TrelloMemberRow, BulkOutcome & { action: 'link' }][]): PreparedBatch {
    const now = new Date(clock.now());
    const tokens = pairs.map(() => randomSecret(32));
    const links: BulkLink[] = pairs.map(([member, planned], i) => ({
      memberId: member.member_id,
      accountId: newId('acc'),
      email: planned.email.toLowerCase(),
      name: member.full_name,
      nickname: member.username,
      retire: planned.retire.map((e) => e.toLowerCase()),
      // A new account gets the member's own Google sign-in (linking.ts).
      google: member.google_sub ? { sub: member.google_sub, email: member.google_email } : undefined,
      tokenHash: sha256(tokens[i]!),
      detail: { memberId: member.member_id, method: 'bulk', created: true, retired: planned.retire.length },
    }));
    const mails = deps.outbox.prepareMany(pairs.map(([member, planned], i) => ({
      to: links[i]!.email,
      template: 'trello-migrated' as const,
      data: mailData(member.full_name, links[i]!.email, member.username, tokens[i]!, planned.retire),
    })));
    return { pairs, links, mails, now };
  }

  /** A batch's plan made ready to write: batched where it can be, member by member otherwise. */
  function prepareWrite(batch: TrelloMemberRow[], plans: BulkOutcome[], perMember: boolean) {
    const together: number[] = [];
    const alone: number[] = [];
    for (const [i, plan] of plans.entries()) {
      if (plan.action !== 'link') continue;
      (!perMember && batchable(plan) ? together : alone).push(i);
    }
    const prepared = together.length ? prepareBatch(together.map((i) => [batch[i]!, plans[i] as BulkOutcome & { action: 'link' }])) : undefined;
    return { batch, plans, together, alone, prepared };
  }

  /** Writes a prepared batch; its outcomes in member order. */
  async function writeBatch(ready: ReturnType<typeof prepareWrite>, onWrite?: (written: BatchWrite) => void): Promise<BulkOutcome[]> {
    const { batch, plans, together, prepared } = ready;
    const alone = [...ready.alone];
    const outcomes = [...plans];
    // The batch's other links never touch these members' addresses (the planner gave each address
    // to at most one link), so writing them before the ones linked alone changes nothing.
    const batched = prepared !== undefined && (await linkBatch(prepared));
    if (!batched) alone.push(...together);
    for (const i of alone.sort((a, b) => a - b)) outcomes[i] = await linkOne(batch[i]!, plans[i] as BulkOutcome & { action: 'link' });
    onWrite?.({ together: batched ? together.length : 0, alone: alone.length, retried: together.length > 0 && !batched });
    return outcomes;
  }

  return {
    remaining: () => trelloMembers.countUnlinked(),

    /**
     * `batchSize` members are read, planned and written at a time (default 1,000). `perMember`
     * links each member in its own transaction, as before batches were written at once.
     * `onPlanned` sees each batch's plan before it is written (a concurrent change then meets
     * the batch as it would in production); `onWrite` says how each batch was written.
     */
    async run(options: { dryRun: boolean; batchSize?: number; perMember?: boolean; onOutcome?: (outcome: BulkOutcome) => void; onBatch?: (summary: BulkSummary) => void; onPlanned?: (plans: readonly BulkOutcome[]) => Promise<void> | void; onWrite?: (written: BatchWrite) => void }): Promise<BulkSummary> {
      const summary: BulkSummary = { examined: 0, linked: 0, conflicts: 0 };
      // Dry run: every address planned so far. Real run: those of the batch being written.
      let earlier = new Map<string, AddressUse>();
      let after = '';
      // Statistics of the tables the links fill, after the first batch that linked, each time
      // the links have grown tenfold since, and at the end (decision 0042).
      let analyzeAt = 1;
      const analyzeWhenGrown = async (force = false) => {
        if (options.dryRun || !summary.linked || (!force && summary.linked < analyzeAt)) return;
        await trelloMembers.analyzeLinked();
        analyzeAt = summary.linked * 10;
      };
      const report = async (outcomes: readonly BulkOutcome[]) => {
        for (const outcome of outcomes) {
          summary.examined += 1;
          if (outcome.action === 'link') summary.linked += 1;
          else summary.conflicts += 1;
          options.onOutcome?.(outcome);
        }
        await analyzeWhenGrown();
        options.onBatch?.(summary);
      };
      // A real run writes one batch while it reads, plans and prepares the next (on a server,
      // the database works while this process renders the next batch's mail); the next is
      // written once the one before is committed, where the next plan's lookups find it.
      let writing: Promise<{ outcomes: BulkOutcome[] } | { error: unknown }> | undefined;
      const finish = async () => {
        if (!writing) return;
        const done = await writing;
        writing = undefined;
        if ('error' in done) throw done.error;
        await report(done.outcomes);
      };
      for (;;) {
        const batch = await trelloMembers.unlinkedBatch(after, options.batchSize ?? DEFAULT_BATCH);
        if (!batch.length) break;
        after = batch.at(-1)!.member_id;
        const claimed = new Map<string, AddressUse>();
        const plans = await planBatch(batch, claimed, earlier);
        await options.onPlanned?.(plans);
        if (options.dryRun) {
          for (const [email, use] of claimed) earlier.set(email, use);
          await report(plans);
          continue;
        }
        const ready = prepareWrite(batch, plans, Boolean(options.perMember));
        await finish();
        earlier = claimed;
        writing = writeBatch(ready, options.onWrite).then((outcomes) => ({ outcomes }), (error: unknown) => ({ error }));
      }
      await finish();
      await analyzeWhenGrown(true);
      if (!options.dryRun && summary.linked) deps.outbox.kick();
      return summary;
    },
  };
}

interface PreparedBatch {
  pairs: [TrelloMemberRow, BulkOutcome & { action: 'link' }][];
  links: BulkLink[];
  mails: PreparedMail[];
  now: Date;
}

/** Members read, planned and written at a time: a batch is one transaction of about a dozen statements. */
export const DEFAULT_BATCH = 1000;

export type BulkMigration = ReturnType<typeof createBulkMigration>;
