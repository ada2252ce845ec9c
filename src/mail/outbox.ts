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
  type Message = { to: string; template: MailTemplate; data: Record<string, unknown> };
  /** Rendered and sealed as it is stored: the body is bound to the message's id. */
  const row = (message: Message, now: Date) => {
    const id = newId('mail');
    const rendered = render(message.template, message.data);
    return {
      id,
      recipient: message.to,
      template: message.template,
      subject: rendered.subject,
      bodySealed: box.seal(JSON.stringify({ text: rendered.text, html: rendered.html }), bodyContext(id)),
      now,
    };
  };
  return {
    async enqueue(tx: Queryable, message: Message): Promise<string> {
      const stored = row(message, new Date(clock.now()));
      await queries.insert(tx, stored);
      return stored.id;
    },
    /** Many messages in one statement, each exactly as `enqueue` writes it (the bulk migration's batch). */
    async enqueueMany(tx: Queryable, messages: Message[]): Promise<string[]> {
      const now = new Date(clock.now());
      const rows = messages.map((m) => row(m, now));
      await queries.insertMany(tx, rows);
      return rows.map((r) => r.id);
    },
    /** Tells the in-process worker to look now (after the caller's transaction has committed). */
    kick(): void {
      deps.onEnqueued?.();
    },
  };
}

export type Outbox = ReturnType<typeof createOutbox>;
