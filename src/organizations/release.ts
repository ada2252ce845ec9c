import { domainToUnicode } from 'node:url';
import type { Queryable } from '../persistence/db.ts';
import type { AccountManagerQueries } from '../persistence/queries/account-managers.ts';
import type { Outbox } from '../mail/outbox.ts';
import { aboutOthers, type RequestMeta, type SecurityEvents } from '../identity/security-events.ts';

/**
 * Releasing managed accounts (decision 0078): what removing a domain that manages accounts, or
 * deleting an organization that does, does to those accounts. Each becomes its owner's alone —
 * the organization's admins no longer act on it, its policies (company sign-in, two-step
 * verification, session limits) no longer apply — and its owner is told by mail and in the
 * security activity. Passwords, two-step verification, sessions and apps stay as they are.
 *
 * Refused while some of those accounts are deactivated without a deletion date: released, nobody
 * could reactivate them (their owner cannot; the organization no longer may). The admins
 * reactivate or delete them first. Accounts whose deletion is scheduled are released and erased
 * on their date as before, without a mail.
 */
export type ReleaseScope = { organizationId: string; organizationName: string; domainId?: string | undefined; domain?: string | undefined };

export type ReleaseResult = { ok: true; released: number } | { ok: false; problem: 'release.deactivated_accounts'; deactivated: number };

export function createRelease(deps: {
  managers: Pick<AccountManagerQueries, 'releaseCounts' | 'release'>;
  outbox: Pick<Outbox, 'enqueue' | 'kick'>;
  events: Pick<SecurityEvents, 'record'>;
  issuer: string;
}) {
  return {
    /** What releasing would act on now: how many managed accounts, how many of them deactivated. */
    counts: (scope: ReleaseScope, tx?: Queryable) => deps.managers.releaseCounts(scope, tx),

    /**
     * Releases inside the caller's transaction (which removes the domain or deletes the
     * organization): all of the scope's accounts or, when one is deactivated, none. The caller
     * holds the organization's row lock, so no claim adds an account meanwhile.
     */
    async release(tx: Queryable, scope: ReleaseScope, meta: RequestMeta = {}): Promise<ReleaseResult> {
      const { deactivated } = await deps.managers.releaseCounts(scope, tx);
      if (deactivated > 0) return { ok: false, problem: 'release.deactivated_accounts', deactivated };
      const released = await deps.managers.release(tx, scope);
      const domain = scope.domain ? domainToUnicode(scope.domain) || scope.domain : undefined;
      for (const account of released) {
        await deps.events.record({ type: 'organization.account_released', accountId: account.id, detail: { organizationId: scope.organizationId, organization: scope.organizationName, ...(scope.domainId ? { domainId: scope.domainId } : {}) } }, aboutOthers(meta), tx);
        // An account being deleted is erased on its date: no mail about a future it does not have.
        if (account.status !== 'active') continue;
        await deps.outbox.enqueue(tx, {
          to: account.email,
          template: 'account-released',
          data: { name: account.name, email: account.email, organization: scope.organizationName, domain, settingsLink: `${deps.issuer}/account`, resetLink: `${deps.issuer}/password/forgot` },
        });
      }
      return { ok: true, released: released.length };
    },

    /** Sends the mails the release queued, once its transaction has committed. */
    kick: () => deps.outbox.kick(),
  };
}

export type Release = ReturnType<typeof createRelease>;
