import type { MailOutboxQueries, OutboxRow } from '../persistence/queries/mail-outbox.ts';
import type { Clock } from '../shared/clock.ts';
import type { SecretBox } from '../shared/crypto.ts';
import type { Logger } from '../shared/logger.ts';
import { bodyContext } from './outbox.ts';
import { MailSendError, type MailTransport } from './transport.ts';

const LEASE_SECONDS = 120;
const BATCH = 20;

/** Backoff before attempt n+1: 30 s, 1 min, 2 min … capped at one hour. */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(3600, 30 * 2 ** Math.max(0, attempts - 1));
}

/**
 * The delivery worker (read side of the outbox). It claims due messages with a lease, sends each
 * once, and records the outcome: sent (body erased), retry later with backoff, or failed (kept
 * for the `mail failed` / `mail retry` commands). A process that dies mid-send leaves its claim
 * to expire, and the message is sent by whoever claims it next.
 */
export function createMailDelivery(deps: { queries: MailOutboxQueries; box: SecretBox; transport: MailTransport; clock: Clock; logger: Logger; from: string; messageIdDomain: string; maxAttempts: number }) {
  const { queries, box, transport, clock, logger } = deps;
  let running: Promise<number> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;

  async function deliver(row: OutboxRow): Promise<void> {
    const now = () => new Date(clock.now());
    if (!row.body_sealed) {
      await queries.markFailed(row.id, 'message body missing');
      return;
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
      return;
    }
    // Accepted by the server. Only a crash in the instant between the server's reply and this
    // update can lead to a second copy (when the lease expires); see decision 0009.
    await queries.markSent(row.id, now());
    logger.info({ mailId: row.id, template: row.template }, 'mail sent');
  }

  async function drain(): Promise<number> {
    let sent = 0;
    while (!stopping) {
      const due = await queries.claimDue(new Date(clock.now()), BATCH, LEASE_SECONDS);
      for (const [i, row] of due.entries()) {
        if (stopping) {
          // Shutting down: the message being sent was finished; the rest of the batch is handed
          // back at once rather than left to its lease, so another instance sends it now.
          await queries.release(due.slice(i).map((r) => r.id));
          return sent;
        }
        await deliver(row);
        sent += 1;
      }
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
