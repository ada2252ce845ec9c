import * as argon2 from 'argon2';
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
}

/**
 * argon2id (RFC 9106) at OWASP's parameters or stronger. Hashes run on libuv's thread pool; at
 * most `maxInFlight` may be queued at once, beyond which callers get `login.busy` (503) instead
 * of an ever-growing queue that would make every login slow (docs/decisions/0005-password-hashing.md).
 *
 * Unknown accounts and accounts without a password are verified against a decoy hash made once
 * with the same parameters, so their response time matches a wrong password's.
 */
export function createPasswordHasher(params: Argon2Parameters, maxInFlight: number): PasswordHasher {
  const options = {
    type: argon2.argon2id,
    memoryCost: params.memoryKiB,
    timeCost: params.timeCost,
    parallelism: params.parallelism,
  } as const;
  let inFlight = 0;
  let decoy: Promise<string> | undefined;

  const bounded = async <T>(work: () => Promise<T>): Promise<T> => {
    if (inFlight >= maxInFlight) throw new AppError('login.busy', 503);
    inFlight += 1;
    try {
      return await work();
    } finally {
      inFlight -= 1;
    }
  };

  const decoyHash = () => (decoy ??= argon2.hash('lanyard decoy password', options));
  // NIST SP 800-63B §5.1.1.2: normalise Unicode before hashing, so the same password typed on
  // another keyboard or system (composed or decomposed accents) still matches.
  const normalise = (password: string) => password.normalize('NFKC');

  return {
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
