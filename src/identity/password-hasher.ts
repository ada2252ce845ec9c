import * as argon2 from 'argon2';
import { availableParallelism } from 'node:os';
import { AppError } from '../shared/errors.ts';

export interface Argon2Parameters {
  memoryKiB: number;
  timeCost: number;
  parallelism: number;
}

export interface PasswordCheck {
  ok: boolean;
  /** The hash was made with other parameters (or another algorithm) and should be replaced. */
  needsRehash: boolean;
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Verifies `password` against `hash`; a missing hash is checked against a decoy so timing tells nothing. */
  verify(hash: string | null | undefined, password: string): Promise<PasswordCheck>;
  /**
   * True when a hash asked for now would be refused (`login.busy`): a step that is about to
   * hash can answer 503 before doing anything else (no statement, no throttle reservation).
   */
  full(): boolean;
}

/**
 * The bound on password hashing: at most `threads` hashes run at once, the others wait here in
 * arrival order, and at most `maxInFlight` run or wait in all — beyond that `run` refuses at once
 * with `login.busy` (503) instead of growing a queue that would make every login slow.
 *
 * Why hashes wait here rather than in libuv's queue (docs/decisions/0051-hashing-beside-the-event-loop.md):
 * argon2 runs on libuv's thread pool, which other work shares (WebCrypto signing of ID tokens, fs,
 * dns); handed to the pool all at once, a burst of hashes would hold every pool thread and queue
 * that work behind seconds of hashing, and as many CPU-bound threads as the pool has would take
 * the cores from the event loop that serves every other request. With `threads` at most the
 * number of cores (and below the pool's size) the hashing still fills the CPU, and the rest keeps
 * a share of it.
 */
export function createHashQueue(threads: number, maxInFlight: number) {
  let inFlight = 0;
  let running = 0;
  const waiting: Array<() => void> = [];
  return {
    async run<T>(work: () => Promise<T>): Promise<T> {
      if (inFlight >= maxInFlight) throw new AppError('login.busy', 503);
      inFlight += 1;
      try {
        if (running < threads) running += 1;
        else await new Promise<void>((resolve) => waiting.push(resolve));
        try {
          return await work();
        } finally {
          // The slot goes to the next waiting hash, or is freed.
          const next = waiting.shift();
          if (next) next();
          else running -= 1;
        }
      } finally {
        inFlight -= 1;
      }
    },
    /** True when `run` would refuse now. */
    get full() {
      return inFlight >= maxInFlight;
    },
    /** Hashes running and waiting now. */
    get load() {
      return { running, waiting: waiting.length };
    },
  };
}

/**
 * argon2id (RFC 9106) at OWASP's parameters or stronger. Hashes run on libuv's thread pool, at
 * most `threads` at once (default: the number of CPUs); at most `maxInFlight` may run or wait,
 * beyond which callers get `login.busy` (503) instead of an ever-growing queue that would make
 * every login slow (docs/decisions/0005-password-hashing.md, 0051).
 *
 * Unknown accounts and accounts without a password are verified against a decoy hash made once
 * with the same parameters, so their response time matches a wrong password's.
 */
export function createPasswordHasher(params: Argon2Parameters, maxInFlight: number, threads = availableParallelism()): PasswordHasher {
  const options = {
    type: argon2.argon2id,
    memoryCost: params.memoryKiB,
    timeCost: params.timeCost,
    parallelism: params.parallelism,
  } as const;
  let decoy: Promise<string> | undefined;
  const queue = createHashQueue(Math.max(1, threads), maxInFlight);
  const bounded = <T>(work: () => Promise<T>): Promise<T> => queue.run(work);

  const decoyHash = () => (decoy ??= argon2.hash('lanyard decoy password', options));
  // NIST SP 800-63B §5.1.1.2: normalise Unicode before hashing, so the same password typed on
  // another keyboard or system (composed or decomposed accents) still matches.
  const normalise = (password: string) => password.normalize('NFKC');

  return {
    full: () => queue.full,
    hash: (password) => bounded(() => argon2.hash(normalise(password), options)),

    async verify(hash, password) {
      if (!hash || !hash.startsWith('$argon2')) {
        const target = await decoyHash();
        await bounded(() => argon2.verify(target, normalise(password)));
        return { ok: false, needsRehash: false };
      }
      const ok = await bounded(() => argon2.verify(hash, normalise(password)));
      return { ok, needsRehash: ok && argon2.needsRehash(hash, options) };
    },
  };
}
