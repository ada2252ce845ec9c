import { pino, type Logger, type DestinationStream } from 'pino';
import { register, registerBeforeExit } from 'on-exit-leak-free';

export type { Logger };

/**
 * How log lines reach standard output when no destination is given (`npm start`; decision 0069):
 * gathered up to `bytes`, and written at the latest `delayMs` after the first line of a batch.
 * A line at warn level or above is written at once, with everything gathered before it.
 */
export const LOG_BATCH = { bytes: 4096, delayMs: 100 } as const;

/** A pino destination that holds lines, with `flush(cb)` as pino's `logger.flush(cb)` calls it. */
export type LineBatch = DestinationStream & { flush(cb?: (err?: Error) => void): void };

/** Where batched lines go: a file descriptor (1: standard output) or a file's path. */
export type LogTarget = number | string;

/** pino's numeric level for warn: lines at or above it are not held. */
const WARN = 40;

/**
 * Structured JSON logs. Anything that could carry a credential is redacted by path, and request
 * logs carry the path without its query (an id_token_hint or a code can travel there).
 *
 * `destination`: a stream, used as it is (tests capture lines with one; the CLI writes to its
 * own); or a file descriptor or path (default 1, standard output), written in batches
 * (LOG_BATCH, decision 0069). Written a line at a time, through pino's default asynchronous
 * destination, every access line was a write handed to libuv's thread pool: 0.23–0.27 ms of the
 * event loop per password login of five requests, more than any other single item Lanyard adds
 * to the bare engine's login (docs/benchmarks.md). The price: a process killed with SIGKILL, or
 * ended by V8 running out of heap (no exit handler runs then either), loses the info lines of at
 * most the last `delayMs`; on any exit Node runs, they are written.
 */
export function createLogger(level: string, destination: DestinationStream | LogTarget = 1): Logger {
  const batched = typeof destination === 'object' || level === 'silent' ? undefined : batchedLines(destination);
  const logger = pino(
    {
      level,
      base: { service: 'lanyard' },
      redact: {
        paths: [
          'password', '*.password', 'secret', '*.secret', 'clientSecret', '*.clientSecret', 'client_secret', '*.client_secret',
          'token', '*.token', 'authorization', '*.authorization', 'cookie', '*.cookie', 'headers.cookie', 'headers.authorization',
        ],
        censor: '[redacted]',
      },
      ...(batched
        ? {
            hooks: {
              logMethod(args, method, lineLevel) {
                method.apply(this, args);
                // An operator watching for trouble sees it when it happens, and a crash right
                // after its error line does not take the line with it.
                if (lineLevel >= WARN) batched.flush();
              },
            },
          }
        : {}),
    },
    batched ?? (typeof destination === 'object' ? destination : undefined),
  );
  return logger;
}

/**
 * Lines held here until LOG_BATCH.bytes are held or LOG_BATCH.delayMs have passed since the first
 * of them, then written to `target` synchronously (pino's destination, sonic-boom, in its sync
 * mode, with its retries on a full pipe). Synchronous, as Node writes its own standard output to
 * a file or a pipe on Linux: a batch is one system call on the event loop, nothing is ever in
 * flight on another thread, so the lines stay in order and the exit handler can write the rest.
 * (With the asynchronous destination a batch still in flight at `process.exit` landed after the
 * lines written at exit, in a test of this.) sonic-boom's own `minLength` batches by size only:
 * what is held below it waits for the next line, however long.
 *
 * The handlers on exit and on an emptied event loop come from on-exit-leak-free, pino's library
 * for its own, which holds the batch weakly.
 */
function batchedLines(target: LogTarget): LineBatch {
  const stream = pino.destination({ dest: target, sync: true });
  const batch = createLineBatch((lines) => stream.write(lines));
  register(batch, (b) => b.flush());
  registerBeforeExit(batch, (b) => b.flush());
  return batch;
}

/**
 * The holding part of the batch: lines kept until `LOG_BATCH.bytes` are held (written at once)
 * or `LOG_BATCH.delayMs` after the first of them, each batch handed to `write` as one string.
 * `flush(cb)` writes what is held now (pino's `logger.flush(cb)` calls it with a callback).
 */
export function createLineBatch(write: (lines: string) => void): LineBatch {
  let held = '';
  let timer: NodeJS.Timeout | undefined;
  const batch = {
    write(line: string) {
      held += line;
      if (held.length >= LOG_BATCH.bytes) batch.flush();
      else if (!timer) {
        timer = setTimeout(() => batch.flush(), LOG_BATCH.delayMs);
        // Held lines never keep the process alive: the exit handler writes them.
        timer.unref();
      }
    },
    flush(cb?: (err?: Error) => void) {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (held) {
        const lines = held;
        held = '';
        write(lines);
      }
      cb?.();
    },
  };
  return batch;
}
