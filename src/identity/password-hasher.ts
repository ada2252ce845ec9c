import * as argon2 from 'argon2';
import { availableParallelism } from 'node:os';
import { AppError } from '../shared/errors.ts';
import { createBcryptWorkers } from './bcrypt-workers.ts';

/** bcrypt of a random string at cost 10 (Trello's), compared against when a member has no hash. */
const DECOY_BCRYPT = '$2b$10$akNXbQt/L4iu2ZNZF2Z1veCzA90Cp1.vvKJ9br0Zl7zs8KvS0ygx2';

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
  /**
   * A second hash in a step whose first check was already admitted — the new hash of a password
   * just proven (parameters raised), a Trello bcrypt check after the account's: it waits for a
   * thread like any hash but is never refused, so a 503 can only come before the first check and
   * never tells how it went (a 503 after a wrong password would be an uncounted answer).
   */
  rehash(password: string): Promise<string>;
  /**
   * Compares with an imported Trello bcrypt hash, in a worker thread at the pool's priority
   * (bcryptjs is JavaScript: on the event loop one check at cost 10 took ~90 ms of it), in this
   * queue's threads. A missing hash is compared with a decoy. Never refused (see `rehash`) after
   * the step's own check, which is how the login's password step uses it; `first` when it is the
   * step's first hash (a form that asks only for the Trello password): refusable then, like
   * `verify` (decision 0063).
   */
  compareLegacy(hash: string | null | undefined, password: string, options?: { first?: boolean }): Promise<boolean>;
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
    /** `admitted`: a later hash of a step already let in — waits its turn, never refused. */
    async run<T>(work: () => Promise<T>, admitted = false): Promise<T> {
      if (!admitted && inFlight >= maxInFlight) throw new AppError('login.busy', 503);
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
export function createPasswordHasher(params: Argon2Parameters, maxInFlight: number, threads = availableParallelism(), options: { nice?: number } = {}): PasswordHasher {
  const argonOptions = {
    type: argon2.argon2id,
    memoryCost: params.memoryKiB,
    timeCost: params.timeCost,
    parallelism: params.parallelism,
  } as const;
  let decoy: Promise<string> | undefined;
  const queue = createHashQueue(Math.max(1, threads), maxInFlight);
  const bounded = <T>(work: () => Promise<T>): Promise<T> => queue.run(work);
  let bcrypt: ReturnType<typeof createBcryptWorkers> | undefined;

  const decoyHash = () => (decoy ??= argon2.hash('lanyard decoy password', argonOptions));
  // NIST SP 800-63B §5.1.1.2: normalise Unicode before hashing, so the same password typed on
  // another keyboard or system (composed or decomposed accents) still matches.
  const normalise = (password: string) => password.normalize('NFKC');

  return {
    full: () => queue.full,
    hash: (password) => bounded(() => argon2.hash(normalise(password), argonOptions)),
    rehash: (password) => queue.run(() => argon2.hash(normalise(password), argonOptions), true),
    compareLegacy: (hash, password, compare = {}) => queue.run(() => (bcrypt ??= createBcryptWorkers(options.nice ?? 0)).compare(hash ?? DECOY_BCRYPT, password), !compare.first),

    async verify(hash, password) {
      if (!hash || !hash.startsWith('$argon2')) {
        const target = await decoyHash();
        await bounded(() => argon2.verify(target, normalise(password)));
        return { ok: false, needsRehash: false };
      }
      const ok = await bounded(() => argon2.verify(hash, normalise(password)));
      return { ok, needsRehash: ok && argon2.needsRehash(hash, argonOptions) };
    },
  };
}
