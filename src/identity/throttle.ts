import { randomUUID } from 'node:crypto';
import type { Clock } from '../shared/clock.ts';
import { hmac } from '../shared/crypto.ts';
import type { ThrottleQueries, ThrottleState } from '../persistence/queries/throttles.ts';

/**
 * Brute-force throttling (docs/decisions/0011-throttling-in-the-database.md).
 *
 * Each guarded action counts failures under two keys: its subject (the email address typed, the
 * account, the sign-up) and the client's address. The subject is the address as typed, so an
 * address without an account is counted and slowed down exactly like one with an account: the
 * throttle tells nothing about existence. After the free attempts, every failure doubles the
 * wait up to a ceiling, so an attacker can slow an account down but never lock it for good, and
 * the counters live in the database, so every instance sees the same ones.
 */
export type ThrottleScope = 'password' | 'second-step' | 'signup' | 'reset' | 'email-code';

export interface ThrottleSettings {
  freeAttempts: number;
  baseDelaySeconds: number;
  maxDelaySeconds: number;
  windowSeconds: number;
}

/**
 * The outcome of `attempt`: go ahead (the attempt is already counted against its subject), or
 * wait. `subjectWaitUntil` is the wait the subject's counter now carries (0 for none), shown if
 * this attempt then fails.
 */
export type Attempt = { ok: true; subjectWaitUntil: number } | { ok: false; retryAfterSeconds: number };

/** From one client address, this many times the per-subject allowance (offices share addresses). */
const IP_FACTOR = 10;

export function createThrottle(deps: { queries: ThrottleQueries; clock: Clock; key: Buffer; settings: ThrottleSettings }) {
  const { queries, clock, settings } = deps;

  const subjectKey = (scope: ThrottleScope, subject: string) => `${scope}:s:${hmac(deps.key, `${scope}:${subject.toLowerCase()}`).slice(0, 32)}`;
  const ipKey = (scope: ThrottleScope, ip: string) => `${scope}:ip:${hmac(deps.key, `${scope}:ip:${ip}`).slice(0, 32)}`;

  const windowStart = (now: number) => new Date(now - settings.windowSeconds * 1000);

  function waitOf(rows: ThrottleState[], now: number): number {
    const until = Math.max(0, ...rows.map((r) => r.blocked_until?.getTime() ?? 0));
    return until > now ? Math.ceil((until - now) / 1000) : 0;
  }

  const secondsUntil = (until: number, now: number) => (until > now ? Math.ceil((until - now) / 1000) : 0);

  /**
   * Before the check: may it be tried now? The client address's counter is read; the subject's
   * is incremented first (`reserve`), so requests sent in parallel cannot all slip through
   * before the first failure is written — only the allowance passes, the rest wait.
   */
  async function attempt(scope: ThrottleScope, subject: string | undefined, ip: string | undefined): Promise<Attempt> {
    const now = clock.now();
    if (ip) {
      const [address] = await queries.find([ipKey(scope, ip)], windowStart(now));
      const wait = waitOf(address ? [address] : [], now);
      if (wait > 0) return { ok: false, retryAfterSeconds: wait };
    }
    if (!subject) return { ok: true, subjectWaitUntil: 0 };
    const reserved = await queries.reserve({ key: subjectKey(scope, subject), free: settings.freeAttempts }, randomUUID(), new Date(now), windowStart(now), settings.baseDelaySeconds, settings.maxDelaySeconds);
    const until = reserved.blocked_until?.getTime() ?? 0;
    if (!reserved.counted) return { ok: false, retryAfterSeconds: Math.max(1, secondsUntil(until, now)) };
    return { ok: true, subjectWaitUntil: until };
  }

  /** After a failed check: the client address is counted too. Returns the wait now due, if any. */
  async function failed(scope: ThrottleScope, ip: string | undefined, tried: Attempt): Promise<number> {
    const now = clock.now();
    const subjectWait = tried.ok ? secondsUntil(tried.subjectWaitUntil, now) : 0;
    if (!ip) return subjectWait;
    const rows = await queries.fail([{ key: ipKey(scope, ip), free: settings.freeAttempts * IP_FACTOR }], new Date(now), windowStart(now), settings.baseDelaySeconds, settings.maxDelaySeconds);
    return Math.max(subjectWait, waitOf(rows, now));
  }

  return {
    attempt,
    failed,

    /**
     * After a success (or a password reset, which proves the owner): the subject's counter
     * starts over. The address's counter does not, or one account the attacker owns would reset
     * the count for every guess against others.
     */
    async succeeded(scope: ThrottleScope, subject: string): Promise<void> {
      await queries.clear([subjectKey(scope, subject)]);
    },

    /**
     * For actions limited by how often they are asked for (sign-up, reset and notice emails):
     * counted against subject and address; refused while waiting, and refused when this request
     * used up the allowance.
     */
    async hit(scope: ThrottleScope, subject: string | undefined, ip: string | undefined): Promise<Attempt> {
      const tried = await attempt(scope, subject, ip);
      if (!tried.ok) return tried;
      const wait = await failed(scope, ip, tried);
      return wait > 0 ? { ok: false, retryAfterSeconds: wait } : tried;
    },

    sweep: (limit = 1000) => queries.sweep(windowStart(clock.now()), limit),
  };
}

export type Throttle = ReturnType<typeof createThrottle>;

