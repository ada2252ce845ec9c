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
  /**
   * Holds the next message's reply: `arrived` resolves when its data has been received, and the
   * server answers (accepts it) only on `release()` — a send in flight for as long as the test wants.
   */
  holdNext(): { arrived: Promise<void>; release(): void };
  /** The most recent message to `address` (with `subject`, if given), waiting briefly for it to arrive. */
  lastTo(address: string, subject?: string): Promise<ParsedMail>;
  close(): Promise<void>;
}

export async function startSmtp(): Promise<TestSmtp> {
  const messages: ParsedMail[] = [];
  const failures: number[] = [];
  const holds: { arrived: () => void; released: Promise<void> }[] = [];
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
      const hold = holds.shift();
      simpleParser(stream).then(async (mail) => {
        if (hold) {
          hold.arrived();
          await hold.released;
        }
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
    holdNext() {
      let arrived!: () => void;
      let release!: () => void;
      const arrivedPromise = new Promise<void>((resolve) => { arrived = resolve; });
      const released = new Promise<void>((resolve) => { release = resolve; });
      holds.push({ arrived, released });
      return { arrived: arrivedPromise, release };
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
