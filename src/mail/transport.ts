import type { Transporter } from 'nodemailer';

export interface OutgoingMail {
  messageId: string;
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string;
}

/** Sends one message; throws with `permanent: true` when retrying cannot help (5xx reply). */
export interface MailTransport {
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

export class MailSendError extends Error {
  readonly permanent: boolean;
  constructor(message: string, permanent: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MailSendError';
    this.permanent = permanent;
  }
}

/**
 * SMTP through nodemailer (pooled connections; STARTTLS when the server offers it). nodemailer
 * (~20 MB once loaded) and its pool are made at the first message: an idle server, or one whose
 * outbox is empty, never needs them (decision 0059).
 */
export function createSmtpTransport(url: string): MailTransport {
  let transporter: Promise<Transporter> | undefined;
  let closed = false;
  const open = () => (transporter ??= import('nodemailer').then(({ default: nodemailer }) => nodemailer.createTransport({ url, pool: true, maxConnections: 3 } as Parameters<typeof nodemailer.createTransport>[0])));
  return {
    async send(mail) {
      if (closed) throw new MailSendError('connection: the transport is closed', false);
      // A library that cannot be loaded is the installation's fault, not the message's: transient,
      // so the message waits for a fixed install instead of failing for good (delivery.ts).
      const smtp = await open().catch((err: unknown) => {
        transporter = undefined;
        throw new MailSendError(`connection: nodemailer could not be loaded (${(err as Error).message.split('\n')[0]})`, false, { cause: err });
      });
      try {
        await smtp.sendMail({ ...mail, messageId: mail.messageId });
      } catch (err) {
        const e = err as { responseCode?: number; message?: string };
        // RFC 5321 §4.2.1: 5yz replies are permanent, 4yz and connection problems are transient.
        const permanent = typeof e.responseCode === 'number' && e.responseCode >= 500;
        throw new MailSendError(`${e.responseCode ?? 'connection'}: ${(e.message ?? String(err)).split('\n')[0]}`, permanent, { cause: err });
      }
    },
    close: () => {
      closed = true;
      void transporter?.then((smtp) => smtp.close(), () => {});
    },
  };
}

/**
 * Development delivery: nothing leaves the machine. Messages are logged (recipient and subject)
 * and kept, newest first, for /dev/mailbox.
 */
export interface DevMailbox extends MailTransport {
  messages(): ReadonlyArray<OutgoingMail & { deliveredAt: Date }>;
}

export function createDevMailbox(log: (line: Record<string, unknown>, message: string) => void, capacity = 50): DevMailbox {
  const kept: Array<OutgoingMail & { deliveredAt: Date }> = [];
  return {
    async send(mail) {
      kept.unshift({ ...mail, deliveredAt: new Date() });
      kept.length = Math.min(kept.length, capacity);
      log({ to: mail.to, subject: mail.subject, messageId: mail.messageId }, 'mail delivered to the development mailbox');
    },
    close() {},
    messages: () => kept,
  };
}
