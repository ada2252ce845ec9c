import type { Queryable } from '../persistence/db.ts';
import type { MailOutboxQueries } from '../persistence/queries/mail-outbox.ts';
import type { Clock } from '../shared/clock.ts';
import type { SecretBox } from '../shared/crypto.ts';
import { newId } from '../shared/ids.ts';
import type { MailRenderer, MailTemplate } from './templates.ts';

export const bodyContext = (id: string) => `mail_outbox:${id}`;

/**
 * The write side of the transactional outbox: a message is rendered and written in the caller's
 * transaction, so it exists if and only if the change that caused it was committed. The delivery
 * worker sends it afterwards (docs/decisions/0009-mail-outbox.md).
 */
export function createOutbox(deps: { queries: MailOutboxQueries; box: SecretBox; render: MailRenderer; clock: Clock; onEnqueued?: (() => void) | undefined }) {
  const { queries, box, render, clock } = deps;
  return {
    async enqueue(tx: Queryable, message: { to: string; template: MailTemplate; data: Record<string, unknown> }): Promise<string> {
      const id = newId('mail');
      const rendered = render(message.template, message.data);
      await queries.insert(tx, {
        id,
        recipient: message.to,
        template: message.template,
        subject: rendered.subject,
        bodySealed: box.seal(JSON.stringify({ text: rendered.text, html: rendered.html }), bodyContext(id)),
        now: new Date(clock.now()),
      });
      return id;
    },
    /** Tells the in-process worker to look now (after the caller's transaction has committed). */
    kick(): void {
      deps.onEnqueued?.();
    },
  };
}

export type Outbox = ReturnType<typeof createOutbox>;
