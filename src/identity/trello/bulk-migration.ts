import { sha256 } from '../../shared/crypto.ts';
import { randomSecret } from '../../shared/ids.ts';
import type { Clock } from '../../shared/clock.ts';
import type { AccountQueries } from '../../persistence/queries/accounts.ts';
import type { PasswordResetQueries } from '../../persistence/queries/password-reset-tokens.ts';
import type { TrelloMemberRow, TrelloQueries } from '../../persistence/queries/trello.ts';
import type { Outbox } from '../../mail/outbox.ts';
import { chooseEmail } from './email-choice.ts';
import type { TrelloLinking } from './linking.ts';

/**
 * The fourth way (docs/flows/trello-migration.md): every member still unlinked gets an account,
 * without a password, and an email explaining the change with a link to set one. Batched and
 * resumable: each member is linked in its own transaction, and a run started again continues
 * with the members still unlinked. `dryRun` changes nothing and reports what it would do.
 */
export type BulkOutcome =
  | { memberId: string; action: 'link'; email: string; retire: string[] }
  | { memberId: string; action: 'conflict'; email: string | undefined; reason: string };

export interface BulkSummary {
  examined: number;
  linked: number;
  conflicts: number;
}

/** How long the "set your password" link of a migrated account works. */
export const SET_PASSWORD_TTL_SECONDS = 30 * 86_400;

export function createBulkMigration(deps: {
  linking: TrelloLinking;
  trello: TrelloQueries;
  accounts: AccountQueries;
  resetTokens: PasswordResetQueries;
  outbox: Outbox;
  clock: Clock;
  issuer: string;
}) {
  const { linking, trello, accounts, clock, issuer } = deps;

  async function plan(member: TrelloMemberRow): Promise<BulkOutcome> {
    // Only a verified address: the set-password link goes to it, and whoever reads it gets the account.
    const chosen = chooseEmail(member.emails.filter((e) => e.verified));
    if (!chosen) return { memberId: member.member_id, action: 'conflict', email: chooseEmail(member.emails)?.email, reason: 'no verified address: the person migrates by logging in with the Trello password' };
    if (await accounts.findByEmail(chosen.email)) {
      return { memberId: member.member_id, action: 'conflict', email: chosen.email, reason: 'the address belongs to another account: the person links by logging in (proving both)' };
    }
    if (await accounts.isRetired(chosen.email)) {
      return { memberId: member.member_id, action: 'conflict', email: chosen.email, reason: 'the address is retired for another account' };
    }
    return { memberId: member.member_id, action: 'link', email: chosen.email, retire: member.emails.filter((e) => e.verified).map((e) => e.email).filter((e) => e !== chosen.email) };
  }

  return {
    remaining: () => trello.countUnlinked(),

    async run(options: { dryRun: boolean; batchSize?: number; onOutcome?: (outcome: BulkOutcome) => void; onBatch?: (summary: BulkSummary) => void }): Promise<BulkSummary> {
      const summary: BulkSummary = { examined: 0, linked: 0, conflicts: 0 };
      let after = '';
      for (;;) {
        const batch = await trello.unlinkedBatch(after, options.batchSize ?? 200);
        if (!batch.length) break;
        after = batch.at(-1)!.member_id;
        for (const member of batch) {
          summary.examined += 1;
          let outcome = await plan(member);
          if (outcome.action === 'link' && !options.dryRun) {
            const token = randomSecret(32);
            const result = await linking.link({
              memberId: member.member_id,
              email: outcome.email,
              method: 'bulk',
              inTransaction: async (tx, account) => {
                const now = new Date(clock.now());
                await deps.resetTokens.replace(tx, { tokenHash: sha256(token), accountId: account.id, now, expiresAt: new Date(clock.now() + SET_PASSWORD_TTL_SECONDS * 1000) });
                await deps.outbox.enqueue(tx, {
                  to: account.email,
                  template: 'trello-migrated',
                  data: { name: account.name, email: account.email, username: member.username, link: `${issuer}/password/reset?token=${token}`, days: SET_PASSWORD_TTL_SECONDS / 86_400, retired: outcome.action === 'link' ? outcome.retire : [] },
                });
              },
            });
            if (!result.ok) outcome = { memberId: member.member_id, action: 'conflict', email: outcome.email, reason: result.problem };
          }
          if (outcome.action === 'link') summary.linked += 1;
          else summary.conflicts += 1;
          options.onOutcome?.(outcome);
        }
        options.onBatch?.(summary);
      }
      if (!options.dryRun && summary.linked) deps.outbox.kick();
      return summary;
    },
  };
}

export type BulkMigration = ReturnType<typeof createBulkMigration>;
