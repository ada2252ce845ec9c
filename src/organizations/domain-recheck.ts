import type { Database } from '../persistence/db.ts';
import type { OrganizationDomainQueries, DomainRow } from '../persistence/queries/organization-domains.ts';
import type { OrganizationQueries } from '../persistence/queries/organizations.ts';
import type { Outbox } from '../mail/outbox.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { instructionsFor, type DomainVerifier } from './domain-verification.ts';
import { displayTime } from '../shared/display-time.ts';

/**
 * The periodic re-check of held (verified or failing) domains (decision 0028). A domain proven
 * once can change hands; every `intervalSeconds` its token must still be published.
 *
 * - Passes: verified (again, if it was failing).
 * - Fails: `failing`, with when it started and why; the first failure of an episode queues a
 *   warning to each admin of the organization, through the outbox, in the same transaction.
 *   While failing, the organization claims no new account at the domain (`claimsFrozen`).
 * - Never: releasing a managed account. A lapsed DNS record is far more often a mistake than a
 *   change of owner, and silently handing accounts back to their users (or to the next claimant)
 *   would be the expensive error; releasing is an explicit admin or operator act.
 *
 * Instances share the work: a domain is claimed by moving its `last_checked_at` to now before
 * the (slow, outside any transaction) check.
 */
export function createDomainRecheck(deps: {
  db: Database;
  domains: OrganizationDomainQueries;
  organizations: OrganizationQueries;
  verifier: DomainVerifier;
  outbox: Outbox;
  clock: Clock;
  logger: Logger;
  intervalSeconds: number;
  http: { httpScheme: 'https' | 'http'; httpPort: number };
  batchSize?: number;
}) {
  const { db, domains, organizations, verifier, outbox, clock, logger } = deps;
  const batch = deps.batchSize ?? 20;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let stopping = false;

  async function warnAdmins(tx: Parameters<Parameters<Database['transaction']>[0]>[0], domain: DomainRow, detail: string, now: Date): Promise<number> {
    const organization = await organizations.find(domain.organization_id, tx);
    const admins = (await organizations.members(domain.organization_id, 'admin', tx)).filter((a) => a.email);
    const instructions = instructionsFor(domain.domain, domain.verification_token, deps.http);
    for (const admin of admins) {
      await outbox.enqueue(tx, {
        to: admin.email,
        template: 'organization-domain-failing',
        data: {
          name: admin.name,
          email: admin.email,
          organization: organization?.name ?? domain.organization_id,
          domain: domain.domain,
          detail,
          when: displayTime(now),
          txtValue: instructions.txtValue,
          fileUrl: instructions.fileUrl,
        },
      });
    }
    return admins.length;
  }

  async function recheck(domain: DomainRow): Promise<void> {
    const outcome = await verifier.check(domain.domain, domain.verification_token);
    const now = new Date(clock.now());
    if (outcome.ok) {
      await domains.recheckPassed(domain.id, outcome.method, now);
      if (domain.state === 'failing') logger.info({ domainId: domain.id, organizationId: domain.organization_id }, 'domain verified again');
      return;
    }
    const detail = outcome.results.map((r) => (r.ok ? '' : r.detail)).filter(Boolean).join('; ');
    const warned = await db.transaction(async (tx) => {
      const started = await domains.recheckFailed(tx, domain.id, detail, now);
      return started ? warnAdmins(tx, domain, detail, now) : undefined;
    });
    if (warned !== undefined) {
      outbox.kick();
      logger.warn({ domainId: domain.id, organizationId: domain.organization_id, admins: warned }, 'verified domain failed its re-check: claims frozen, admins warned');
    }
  }

  async function recheckDue(): Promise<number> {
    if (deps.intervalSeconds <= 0) return 0;
    let checked = 0;
    while (!stopping) {
      const now = clock.now();
      const due = await domains.claimDueRechecks(new Date(now), new Date(now - deps.intervalSeconds * 1000), batch);
      for (const domain of due) {
        try {
          await recheck(domain);
        } catch (err) {
          // One domain's trouble (a database hiccup) does not stop the others; it is due again next interval.
          logger.error({ domainId: domain.id, err: { message: (err as Error).message } }, 'domain re-check failed');
        }
      }
      checked += due.length;
      if (due.length < batch) break;
    }
    return checked;
  }

  return {
    /** One pass over the due domains (tests call it); concurrent calls share the pass in progress. */
    recheckDue(): Promise<number> {
      running ??= recheckDue().finally(() => { running = undefined; });
      return running;
    },
    /** Starts the timer: a pass every tenth of the interval, at most every 10 minutes; unref'd. */
    start(): void {
      if (deps.intervalSeconds <= 0 || timer) return;
      stopping = false;
      const every = Math.min(600, Math.max(1, Math.floor(deps.intervalSeconds / 10)));
      timer = setInterval(() => {
        this.recheckDue().catch((err: unknown) => logger.error({ err: { message: (err as Error).message } }, 'domain re-check worker error'));
      }, every * 1000).unref();
    },
    /** Stops the timer and waits for the pass in flight (it ends after the domain being checked). */
    async stop(): Promise<void> {
      stopping = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}

export type DomainRecheck = ReturnType<typeof createDomainRecheck>;
