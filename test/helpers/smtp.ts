import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import type { AddressInfo } from 'node:net';

/**
 * A real SMTP server on 127.0.0.1 for tests (smtp-server), parsing what arrives (mailparser).
 * `failNext(code)` makes the next deliveries answer with an SMTP error (451 transient, 550 permanent).
 */
export interface TestSmtp {
  url: string;
  messages: ParsedMail[];
  failNext(code: number, times?: number): void;
  /** The most recent message to `address` (with `subject`, if given), waiting briefly for it to arrive. */
  lastTo(address: string, subject?: string): Promise<ParsedMail>;
  close(): Promise<void>;
}

export async function startSmtp(): Promise<TestSmtp> {
  const messages: ParsedMail[] = [];
  const failures: number[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      const failure = failures.shift();
      if (failure) {
        stream.resume();
        stream.on('end', () => callback(Object.assign(new Error(`${failure} test failure`), { responseCode: failure })));
        return;
      }
      simpleParser(stream).then((mail) => {
        messages.push(mail);
        callback();
      }, (err: Error) => callback(err));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    failNext(code, times = 1) {
      for (let i = 0; i < times; i += 1) failures.push(code);
    },
    async lastTo(address, subject) {
      for (let i = 0; i < 50; i += 1) {
        const found = [...messages].reverse().find((m) => (subject === undefined || m.subject === subject) && (Array.isArray(m.to) ? m.to : [m.to]).some((t) => t?.value.some((v) => v.address === address)));
        if (found) return found;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no message to ${address}`);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The first link in a message's text that starts with `prefix`. */
export function linkIn(mail: ParsedMail, prefix: string): string {
  const match = (mail.text ?? '').split(/\s+/).find((word) => word.startsWith(prefix));
  if (!match) throw new Error(`no link starting with ${prefix} in: ${mail.text}`);
  return match;
}
