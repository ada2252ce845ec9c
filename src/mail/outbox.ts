import type { Queryable } from '../persistence/db.ts';
import type { MailOutboxQueries } from '../persistence/queries/mail-outbox.ts';
import type { Clock } from '../shared/clock.ts';
import type { SecretBox } from '../shared/crypto.ts';
import { newId } from '../shared/ids.ts';
import type { MailRenderer, MailTemplate } from './templates.ts';

export const bodyContext = (id: string) => `mail_outbox:${id}`;

/** A message rendered and sealed, ready to be stored (`prepareMany`). */
export interface PreparedMail {
  id: string;
  recipient: string;
  template: string;
  subject: string;
  bodySealed: string;
  now: Date;
}

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
    /**
     * Many messages, each exactly as `enqueue` writes it, rendered and sealed now (before the
     * caller's transaction, which then only stores them: the bulk migration's batch).
     */
    prepareMany(messages: Message[]): PreparedMail[] {
      const now = new Date(clock.now());
      return messages.map((m) => row(m, now));
    },
    /** Stores prepared messages in one statement, in the caller's transaction. */
    async enqueuePrepared(tx: Queryable, prepared: PreparedMail[]): Promise<void> {
      await queries.insertMany(tx, prepared);
    },
    /** Tells the in-process worker to look now (after the caller's transaction has committed). */
    kick(): void {
      deps.onEnqueued?.();
    },
  };
}

export type Outbox = ReturnType<typeof createOutbox>;
