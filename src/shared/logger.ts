import { pino, type Logger, type DestinationStream } from 'pino';
import { register, registerBeforeExit } from 'on-exit-leak-free';

export type { Logger };

/**
 * How log lines reach standard output when no destination is given (`npm start`; decision 0069):
 * gathered up to `bytes`, and written at the latest `delayMs` after the first line of a batch.
 * A line at warn level or above is written at once, with everything gathered before it.
 */
export const LOG_BATCH = { bytes: 4096, delayMs: 100 } as const;

/** Where batched lines go: a file descriptor (1: standard output) or a file's path. */
export type LogTarget = number | string;

/** pino's numeric level for warn: lines at or above it are not held. */
const WARN = 40;

/**
 * Structured JSON logs. Anything that could carry a credential is redacted by path, and request
 * logs carry the path without its query (an id_token_hint or a code can travel there).
 *
 * `destination`: a stream, used as it is (tests capture lines with one; the CLI writes to its
 * own); or a file descriptor or path (default 1, standard output), written through pino's
 * asynchronous destination (sonic-boom) in batches (LOG_BATCH). One write per line handed every access line to
 * libuv's thread pool — a system call each, 0.22–0.27 ms of the event loop per password login of
 * its five requests, more than any other single item Lanyard adds to the bare engine's login
 * (docs/benchmarks.md). The price: a process killed with SIGKILL loses the info lines of at most
 * the last `delayMs`; on any exit Node runs, pino writes what is held first (its exit handler).
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
 * `target` through pino's asynchronous destination (sonic-boom: while one write is in
 * flight, the lines that follow gather for the next), with lines held here until LOG_BATCH.bytes
 * are held or LOG_BATCH.delayMs have passed since the first of them. sonic-boom's own `minLength`
 * batches by size only: what is held below it waits for the next line or the exit, however long.
 *
 * On exit the held lines are written synchronously, after pino's own handler has written what
 * sonic-boom holds (on-exit-leak-free, pino's library for this, calls handlers in the order they
 * were registered, and the destination registers first): the lines stay in order. A write
 * sonic-boom has in flight on the thread pool at that moment is pino's own caveat, as before.
 */
function batchedLines(target: LogTarget): DestinationStream & { flush(): void } {
  const stream = pino.destination({ dest: target, sync: false });
  let held = '';
  let timer: NodeJS.Timeout | undefined;
  const batch = {
    write(line: string) {
      held += line;
      if (held.length >= LOG_BATCH.bytes) batch.flush();
      else if (!timer) {
        timer = setTimeout(batch.flush, LOG_BATCH.delayMs);
        // Held lines never keep the process alive: the exit handler writes them.
        timer.unref();
      }
    },
    flush() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (held) stream.write(batch.take());
    },
    held: () => held.length > 0,
    take() {
      const lines = held;
      held = '';
      return lines;
    },
  };
  // 'exit': no more turns of the event loop, so what is held is written synchronously (a
  // destination of its own, sync: sonic-boom's retries on a full pipe included); 'beforeExit'
  // (the loop emptied with lines held, as a command's last lines are): written as usual.
  register(batch, (b) => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (b.held()) pino.destination({ dest: target, sync: true }).write(b.take());
  });
  registerBeforeExit(batch, (b) => b.flush());
  return batch;
}
