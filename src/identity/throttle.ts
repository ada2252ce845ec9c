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

export type ThrottleCheck = { ok: true; counted: boolean } | { ok: false; retryAfterSeconds: number };

/** From one client address, this many times the per-subject allowance (offices share addresses). */
const IP_FACTOR = 10;

export function createThrottle(deps: { queries: ThrottleQueries; clock: Clock; key: Buffer; settings: ThrottleSettings }) {
  const { queries, clock, settings } = deps;

  const subjectKey = (scope: ThrottleScope, subject: string) => `${scope}:s:${hmac(deps.key, `${scope}:${subject.toLowerCase()}`).slice(0, 32)}`;
  const ipKey = (scope: ThrottleScope, ip: string) => `${scope}:ip:${hmac(deps.key, `${scope}:ip:${ip}`).slice(0, 32)}`;

  function keysFor(scope: ThrottleScope, subject: string | undefined, ip: string | undefined) {
    const entries: { key: string; free: number }[] = [];
    if (subject) entries.push({ key: subjectKey(scope, subject), free: settings.freeAttempts });
    if (ip) entries.push({ key: ipKey(scope, ip), free: settings.freeAttempts * IP_FACTOR });
    return entries;
  }

  const windowStart = (now: number) => new Date(now - settings.windowSeconds * 1000);

  function waitOf(rows: ThrottleState[], now: number): number {
    const until = Math.max(0, ...rows.map((r) => r.blocked_until?.getTime() ?? 0));
    return until > now ? Math.ceil((until - now) / 1000) : 0;
  }

  /** Before the action: may it be tried now? One indexed read. */
  async function check(scope: ThrottleScope, subject: string | undefined, ip: string | undefined): Promise<ThrottleCheck> {
    const entries = keysFor(scope, subject, ip);
    if (!entries.length) return { ok: true, counted: false };
    const now = clock.now();
    const rows = await queries.find(entries.map((e) => e.key), windowStart(now));
    const wait = waitOf(rows, now);
    return wait > 0 ? { ok: false, retryAfterSeconds: wait } : { ok: true, counted: rows.some((r) => r.key === entries[0]!.key) };
  }

  /** After a failure (or, for actions limited by count, after every request). Returns the wait now due, if any. */
  async function fail(scope: ThrottleScope, subject: string | undefined, ip: string | undefined): Promise<number> {
    const entries = keysFor(scope, subject, ip);
    if (!entries.length) return 0;
    const now = clock.now();
    const rows = await queries.fail(entries, new Date(now), windowStart(now), settings.baseDelaySeconds, settings.maxDelaySeconds);
    return waitOf(rows, now);
  }

  return {
    check,
    fail,

    /**
     * For actions limited by how often they are asked for (sign-up, reset emails): refused while
     * waiting (not counted), else counted, and refused if this request used up the allowance.
     */
    async hit(scope: ThrottleScope, subject: string | undefined, ip: string | undefined): Promise<ThrottleCheck> {
      const checked = await check(scope, subject, ip);
      if (!checked.ok) return checked;
      const wait = await fail(scope, subject, ip);
      return wait > 0 ? { ok: false, retryAfterSeconds: wait } : checked;
    },

    /**
     * After a success: the subject's counter starts over. The address's counter does not, or one
     * account the attacker owns would reset the count for every guess against others.
     */
    async succeed(scope: ThrottleScope, subject: string, checked: ThrottleCheck): Promise<void> {
      if (checked.ok && checked.counted) await queries.clear([subjectKey(scope, subject)]);
    },

    /** Clears a subject's counter regardless (a password reset proves the owner). */
    async clear(scope: ThrottleScope, subject: string): Promise<void> {
      await queries.clear([subjectKey(scope, subject)]);
    },

    sweep: (limit = 1000) => queries.sweep(windowStart(clock.now()), limit),
  };
}

export type Throttle = ReturnType<typeof createThrottle>;

