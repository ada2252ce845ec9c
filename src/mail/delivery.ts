import type { MailOutboxQueries, OutboxRow } from '../persistence/queries/mail-outbox.ts';
import type { Clock } from '../shared/clock.ts';
import type { SecretBox } from '../shared/crypto.ts';
import type { Logger } from '../shared/logger.ts';
import { bodyContext } from './outbox.ts';
import { MailSendError, type MailTransport } from './transport.ts';

const LEASE_SECONDS = 120;
const BATCH = 20;

/**
 * Hands the space of what the outbox deleted (bodies of sent messages, records past their
 * retention, the records' older versions) back to PostgreSQL once `every` rows have gone, with a
 * VACUUM of the two outbox tables, so that they stay the size of the queue even when autovacuum is
 * off or behind during a bulk send (decision 0054). `every` 0 leaves it to autovacuum.
 */
export function createOutboxUpkeep(deps: { queries: Pick<MailOutboxQueries, 'vacuum'>; every: number; logger: Logger }) {
  let since = 0;
  let vacuuming: Promise<void> | undefined;
  return {
    /** Counts rows deleted; vacuums (once at a time in this process) when enough have gone. */
    async removed(n: number): Promise<void> {
      since += n;
      if (deps.every <= 0 || since < deps.every || vacuuming) return;
      since = 0;
      vacuuming = deps.queries.vacuum().catch((err: unknown) => {
        deps.logger.warn({ err: { message: (err as Error).message } }, 'vacuuming the mail outbox failed');
      });
      try {
        await vacuuming;
      } finally {
        vacuuming = undefined;
      }
    },
  };
}

export type OutboxUpkeep = ReturnType<typeof createOutboxUpkeep>;

/**
 * The retention sweep: deletes the records of messages sent more than `retentionDays` ago, in
 * batches of 1,000, at most 100 batches a call (a sweeper task; several instances skip each
 * other's rows). Returns how many went.
 */
export async function sweepSentMail(deps: { queries: Pick<MailOutboxQueries, 'pruneSent'>; upkeep: OutboxUpkeep; clock: Clock; retentionDays: number }): Promise<number> {
  const before = new Date(deps.clock.now() - deps.retentionDays * 86_400_000);
  let removed = 0;
  for (let batch = 0; batch < 100; batch += 1) {
    const n = await deps.queries.pruneSent(before, 1000);
    removed += n;
    await deps.upkeep.removed(n);
    if (n < 1000) break;
  }
  return removed;
}

/** Backoff before attempt n+1: 30 s, 1 min, 2 min … capped at one hour. */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(3600, 30 * 2 ** Math.max(0, attempts - 1));
}

/**
 * The delivery worker (read side of the outbox). It claims due messages with a lease, sends each
 * once, and records the outcome: sent (body deleted; the record of recipient, subject and time
 * stays for `MAIL_SENT_RETENTION_DAYS`), retry later with backoff, or failed (kept for the
 * `mail failed` / `mail retry` commands). A process that dies mid-send leaves its claim to expire,
 * and the message is sent by whoever claims it next.
 */
export function createMailDelivery(deps: { queries: MailOutboxQueries; box: SecretBox; transport: MailTransport; clock: Clock; logger: Logger; from: string; messageIdDomain: string; maxAttempts: number; upkeep?: OutboxUpkeep }) {
  const { queries, box, transport, clock, logger } = deps;
  let running: Promise<number> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;

  /** Sends one claimed message and records the outcome; true when it was sent (its body deleted). */
  async function deliver(row: OutboxRow): Promise<boolean> {
    const now = () => new Date(clock.now());
    if (!row.body_sealed) {
      await queries.markFailed(row.id, 'message body missing');
      return false;
    }
    try {
      const body = JSON.parse(box.open(row.body_sealed, bodyContext(row.id))) as { text: string; html: string };
      await transport.send({
        messageId: `<${row.id}@${deps.messageIdDomain}>`,
        from: deps.from,
        to: row.recipient,
        subject: row.subject,
        text: body.text,
        html: body.html,
      });
    } catch (err) {
      const permanent = !(err instanceof MailSendError) || err.permanent;
      const reason = err instanceof Error ? err.message : String(err);
      if (permanent || row.attempts >= deps.maxAttempts) {
        await queries.markFailed(row.id, reason);
        logger.error({ mailId: row.id, template: row.template, attempts: row.attempts, reason }, 'mail delivery failed for good');
      } else {
        const next = new Date(clock.now() + retryDelaySeconds(row.attempts) * 1000);
        await queries.markRetry(row.id, next, reason);
        logger.warn({ mailId: row.id, template: row.template, attempts: row.attempts, reason, next }, 'mail delivery will be retried');
      }
      return false;
    }
    // Accepted by the server. Only a crash in the instant between the server's reply and this
    // update can lead to a second copy (when the lease expires); see decision 0009.
    await queries.markSent(row.id, now());
    logger.info({ mailId: row.id, template: row.template }, 'mail sent');
    return true;
  }

  async function drain(): Promise<number> {
    let sent = 0;
    while (!stopping) {
      const due = await queries.claimDue(new Date(clock.now()), BATCH, LEASE_SECONDS);
      let bodiesDeleted = 0;
      for (const [i, row] of due.entries()) {
        if (stopping) {
          // Shutting down: the message being sent was finished; the rest of the batch is handed
          // back at once rather than left to its lease, so another instance sends it now.
          await queries.release(due.slice(i).map((r) => r.id));
          return sent;
        }
        if (await deliver(row)) bodiesDeleted += 1;
        sent += 1;
      }
      // The upkeep's VACUUM runs between batches, when this worker holds no lease: run in the
      // middle of one, a long VACUUM could outlast the batch's leases and let another instance
      // claim and send its remaining messages a second time.
      if (bodiesDeleted) await deps.upkeep?.removed(bodiesDeleted);
      if (due.length < BATCH) return sent;
    }
    return sent;
  }

  return {
    /** Sends everything due now; concurrent calls share one run. Returns how many were handled. */
    async deliverDue(): Promise<number> {
      if (running) {
        again = true;
        return running;
      }
      running = (async () => {
        let total = 0;
        do {
          again = false;
          total += await drain();
        } while (again && !stopping);
        return total;
      })();
      try {
        return await running;
      } finally {
        running = undefined;
      }
    },

    start(intervalSeconds: number): void {
      if (intervalSeconds <= 0 || timer) return;
      timer = setInterval(() => {
        this.deliverDue().catch((err: unknown) => logger.error({ err: { message: (err as Error).message } }, 'mail worker error'));
      }, intervalSeconds * 1000);
      timer.unref();
    },

    /** Stops polling and waits for the message being sent, if any; nothing further is claimed. */
    async stop(): Promise<void> {
      stopping = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      await running?.catch(() => 0);
      transport.close();
    },
  };
}

export type MailDelivery = ReturnType<typeof createMailDelivery>;
