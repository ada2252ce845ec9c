import { createHmac } from 'node:crypto';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type { RetiredEmailQueries } from '../persistence/queries/retired-emails.ts';
import type { LinkEventRow, TrelloLinkEventQueries } from '../persistence/queries/trello-link-events.ts';

/**
 * Tells Trello that a member was linked (docs/decisions/0014-trello-link-webhook.md): a JSON POST
 * to TRELLO_WEBHOOK_URL, signed like Stripe's and GitHub's webhooks so Trello can check it came
 * from us and is fresh:
 *
 *   Lanyard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(client secret, "<t>.<body>")>
 *
 * Events are written in the linking transaction and delivered here at least once, in order of
 * linking, retried with backoff (30 s doubling, capped at 1 h) until `maxAttempts`. A 2xx answer
 * is delivery; anything else, or no answer within 10 s, is retried. Trello deduplicates by
 * `event_id`.
 */
export const SIGNATURE_HEADER = 'Lanyard-Signature';

export function signPayload(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export function createLinkWebhook(deps: {
  linkEvents: TrelloLinkEventQueries;
  /** For the addresses the event names. */
  retiredEmails: RetiredEmailQueries;
  clock: Clock;
  logger: Logger;
  url: string | undefined;
  /** The Trello client's secret, read when sending (it can be rotated with the CLI). */
  secret: () => Promise<string | undefined>;
  maxAttempts: number;
  fetch?: typeof fetch;
}) {
  const { linkEvents, retiredEmails, clock, logger } = deps;
  const send = deps.fetch ?? fetch;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;

  async function deliver(event: LinkEventRow, secret: string): Promise<void> {
    const now = new Date(clock.now());
    // The addresses that now lead to the member, read when sending: the account's own and the
    // retired ones. Never an address dropped at linking (decision 0020).
    const owned = await retiredEmails.addressesOf(event.account_id);
    const body = JSON.stringify({
      event_id: `link_${event.id}`,
      type: 'member.linked',
      member_id: event.member_id,
      account_id: event.account_id,
      email: owned.email ?? null,
      retired_emails: owned.retired,
      linked_at: event.created_at.toISOString(),
    });
    try {
      const res = await send(deps.url!, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signPayload(secret, Math.floor(clock.now() / 1000), body) },
        body,
        signal: AbortSignal.timeout(10_000),
        redirect: 'error',
      });
      if (res.ok) {
        await linkEvents.linkEventDelivered(event.id, now);
        return;
      }
      throw new Error(`HTTP ${res.status}`);
    } catch (err) {
      const attempts = event.attempts + 1;
      const next = attempts >= deps.maxAttempts ? null : new Date(clock.now() + Math.min(3600, 30 * 2 ** (attempts - 1)) * 1000);
      await linkEvents.linkEventFailed(event.id, (err as Error).message, next, now);
      logger[next ? 'warn' : 'error']({ eventId: event.id, memberId: event.member_id, attempts, err: { message: (err as Error).message } }, next ? 'trello link event will be retried' : 'trello link event failed for good');
    }
  }

  async function deliverDue(): Promise<number> {
    if (!deps.url) return 0;
    const secret = await deps.secret();
    if (!secret) {
      logger.warn('trello link events wait: the Trello client has no secret to sign them with');
      return 0;
    }
    let sent = 0;
    for (;;) {
      const due = await linkEvents.claimDueLinkEvents(new Date(clock.now()), 60, 20);
      for (const event of due) await deliver(event, secret);
      sent += due.length;
      if (due.length < 20) return sent;
    }
  }

  return {
    /** Runs one pass (tests call it); concurrent calls share the pass in progress. */
    deliverDue(): Promise<number> {
      running ??= deliverDue().finally(() => { running = undefined; });
      return running;
    },
    start(pollSeconds: number) {
      if (!deps.url || pollSeconds <= 0) return;
      timer = setInterval(() => {
        this.deliverDue().catch((err: unknown) => logger.error({ err: { message: (err as Error).message } }, 'trello link webhook error'));
      }, pollSeconds * 1000).unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      await running;
    },
  };
}

export type LinkWebhook = ReturnType<typeof createLinkWebhook>;
