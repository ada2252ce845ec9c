import { randomUUID } from 'node:crypto';
import type { Clock } from '../shared/clock.ts';
import { hmac } from '../shared/crypto.ts';
import type { Defer } from '../persistence/db.ts';
import type { ThrottleQueries, ThrottleState } from '../persistence/queries/throttles.ts';

/**
 * Brute-force throttling (docs/decisions/0011-throttling-in-the-database.md, revised by
 * docs/decisions/0022-device-cookies-and-client-addresses.md).
 *
 * Each guarded action counts failures under two keys: its subject (the email address typed, the
 * account, the sign-up) and the client's address. The subject is the address as typed, so an
 * address without an account is counted and slowed down exactly like one with an account: the
 * throttle tells nothing about existence. After the free attempts, every failure doubles the
 * wait up to a ceiling, so an attacker can slow an account down but never lock it for good, and
 * the counters live in the database, so every instance sees the same ones.
 *
 * A browser that has signed in to that subject before (a device cookie, OWASP's "device
 * cookies") is counted under its own key instead, and is not held back by the subject's or the
 * client address's counters: a stranger's failures can slow strangers down, never the owner on a
 * known device.
 *
 * The client address counts only failures against subjects still within their free allowance:
 * it catches one client spraying many subjects, while one person hammering one account (whose
 * own counter already slows them) cannot get a whole office behind one NAT address blocked.
 */
export type ThrottleScope =
  | 'password' | 'second-step' | 'signup' | 'reset' | 'email-code' | 'notice'
  // Organization admins (docs/flows/organizations.md, "Limits"): invitation mail per invited
  // address (across organizations) and per inviting account, organizations created per account,
  // "Verify now" per domain and per account.
  | 'invitation' | 'invitation-admin' | 'organization-create' | 'domain-verify' | 'domain-verify-admin';

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
export type Attempt =
  | {
    ok: true; subjectWaitUntil: number; /** failures counted against the subject's key, this attempt included */ failures: number; viaDevice: boolean;
    /** The counter this attempt incremented and the attempt's token, for `release`. */
    held?: { key: string; token: string };
  }
  | { ok: false; retryAfterSeconds: number; /** which counter refused: the subject's (or device's), or the client address's */ by: 'subject' | 'address' };

/** What `attempt` reserves before a check (`reservation`): the subject's (or device's) key and the statement's parameters. */
export interface Reservation {
  key: string;
  free: number;
  unlessAddress: string | undefined;
  token: string;
  now: Date;
  since: Date;
  baseSeconds: number;
  maxSeconds: number;
  viaDevice: boolean;
}

/** The reservation's row, as `ThrottleQueries.reserve` answers it. */
export type Reserved = ThrottleState & { counted: boolean; address_blocked_until?: Date | null };

/** A reservation the caller made itself, in one statement with its own reads, handed to `attempt`. */
export interface Made { reservation: Reservation; reserved: Reserved }

/** From one client address, this many times the per-subject allowance (offices share addresses). */
const IP_FACTOR = 10;

/**
 * Scopes whose subject is one admin acting on many targets get this many times the allowance:
 * an organization may have 50 open invitations and 50 domains, and inviting or verifying each
 * once must not make its admin wait. The per-target scopes (`invitation`, `domain-verify`) keep
 * the ordinary allowance.
 */
const SUBJECT_FACTOR: Partial<Record<ThrottleScope, number>> = { 'invitation-admin': 10, 'domain-verify-admin': 10 };

export function createThrottle(deps: { queries: ThrottleQueries; clock: Clock; key: Buffer; settings: ThrottleSettings; defer?: Defer }) {
  const { queries, clock, settings } = deps;

  const subjectKey = (scope: ThrottleScope, subject: string) => `${scope}:s:${hmac(deps.key, `${scope}:${subject.toLowerCase()}`).slice(0, 32)}`;
  const ipKey = (scope: ThrottleScope, ip: string) => `${scope}:ip:${hmac(deps.key, `${scope}:ip:${ip}`).slice(0, 32)}`;
  const deviceKey = (scope: ThrottleScope, device: string) => `${scope}:d:${hmac(deps.key, `${scope}:d:${device}`).slice(0, 32)}`;

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
   *
   * `device` is the id of a device cookie that names this subject (the caller has verified it):
   * the attempt is then counted under the device's own key, and neither the subject's nor the
   * client address's counter can refuse it.
   */
  async function attempt(scope: ThrottleScope, subject: string | undefined, ip: string | undefined, device?: string, made?: Made): Promise<Attempt> {
    if (made) return settle(made.reservation, made.reserved);
    const now = clock.now();
    const key = device ? deviceKey(scope, device) : subject ? subjectKey(scope, subject) : undefined;
    const addressKey = ip && !device ? ipKey(scope, ip) : undefined;
    if (addressKey && !key) {
      const [address] = await queries.find([addressKey], windowStart(now));
      const wait = waitOf(address ? [address] : [], now);
      if (wait > 0) return { ok: false, retryAfterSeconds: wait, by: 'address' };
    }
    if (!key) return { ok: true, subjectWaitUntil: 0, failures: 0, viaDevice: false };
    const r = reservation(scope, subject, ip, device)!;
    // The client address's wait is checked in the same statement: a waiting address counts nothing.
    return settle(r, await queries.reserve(r, r.token, r.now, r.since, r.baseSeconds, r.maxSeconds));
  }

  /**
   * What `attempt` reserves, for a caller that makes the reservation in a statement of its own
   * together with other reads (the password step, src/persistence/queries/password-step.ts) and
   * hands the row back to `attempt` (`made`). Undefined without a subject or device.
   */
  function reservation(scope: ThrottleScope, subject: string | undefined, ip: string | undefined, device?: string): Reservation | undefined {
    const at = clock.now();
    const key = device ? deviceKey(scope, device) : subject ? subjectKey(scope, subject) : undefined;
    if (!key) return undefined;
    return {
      key,
      free: settings.freeAttempts * (device ? 1 : SUBJECT_FACTOR[scope] ?? 1),
      unlessAddress: ip && !device ? ipKey(scope, ip) : undefined,
      token: randomUUID(),
      now: new Date(at),
      since: windowStart(at),
      baseSeconds: settings.baseDelaySeconds,
      maxSeconds: settings.maxDelaySeconds,
      viaDevice: Boolean(device),
    };
  }

  /** The attempt a reservation's row amounts to. */
  function settle(r: Reservation, reserved: Reserved): Attempt {
    const now = r.now.getTime();
    const addressWait = secondsUntil(reserved.address_blocked_until?.getTime() ?? 0, now);
    if (addressWait > 0) return { ok: false, retryAfterSeconds: addressWait, by: 'address' };
    const until = reserved.blocked_until?.getTime() ?? 0;
    if (!reserved.counted) return { ok: false, retryAfterSeconds: Math.max(1, secondsUntil(until, now)), by: 'subject' };
    return { ok: true, subjectWaitUntil: until, failures: reserved.failures, viaDevice: r.viaDevice, held: { key: r.key, token: r.token } };
  }

  /**
   * After a failed check: the client address is counted too, unless the attempt came from a
   * known device or its subject is already past its free allowance (see the module comment).
   * Returns the wait now due, if any.
   */
  async function failed(scope: ThrottleScope, ip: string | undefined, tried: Attempt): Promise<number> {
    const now = clock.now();
    const subjectWait = tried.ok ? secondsUntil(tried.subjectWaitUntil, now) : 0;
    if (!ip || (tried.ok && (tried.viaDevice || tried.failures > settings.freeAttempts))) return subjectWait;
    const rows = await queries.fail([{ key: ipKey(scope, ip), free: settings.freeAttempts * IP_FACTOR }], new Date(now), windowStart(now), settings.baseDelaySeconds, settings.maxDelaySeconds);
    return Math.max(subjectWait, waitOf(rows, now));
  }

  return {
    attempt,
    reservation,
    failed,

    /**
     * The check an attempt was reserved for never ran (the password hashing was full: 503): the
     * attempt is given back, so that overload never counts against an owner. Only while no later
     * attempt has been reserved on the counter (its token is still the last one); otherwise the
     * attempt stays counted, which can only hold back, never let through, a guess.
     */
    async release(tried: Attempt): Promise<void> {
      if (tried.ok && tried.held) await queries.release(tried.held.key, tried.held.token);
    },

    /**
     * After a success (or a password reset, which proves the owner): the subject's counter
     * starts over. The address's counter does not, or one account the attacker owns would reset
     * the count for every guess against others.
     *
     * Inside a request whose writes are stored as it ends (`defer`), the clearing is stored with
     * them, in the same statement as the login's result and audit row: until then the attempt
     * stays counted, which can only hold back, never let through, a guess made meanwhile.
     */
    async succeeded(scope: ThrottleScope, subject: string, device?: string): Promise<void> {
      const keys = device ? [subjectKey(scope, subject), deviceKey(scope, device)] : [subjectKey(scope, subject)];
      if (deps.defer?.(queries.clearing(keys))) return;
      await queries.clear(keys);
    },

    /**
     * For actions limited by how often they are asked for (sign-up, reset and notice emails):
     * counted against subject and address, refused while a wait runs. The waits lie *between*
     * requests: the request counted once a wait has run out goes ahead (and sets the next,
     * longer wait), so the action is slowed down, never stopped — one request a day from a
     * stranger cannot keep an owner's reset mail from going out.
     */
    async hit(scope: ThrottleScope, subject: string | undefined, ip: string | undefined, device?: string): Promise<Attempt> {
      const tried = await attempt(scope, subject, ip, device);
      if (tried.ok) await failed(scope, ip, tried);
      return tried;
    },

    /**
     * The tag a device cookie carries for a subject it has signed in to: a keyed hash, so the
     * cookie names the subject without holding the address in clear.
     */
    deviceTag: (subject: string) => hmac(deps.key, `device:${subject.toLowerCase()}`).slice(0, 22),

    sweep: (limit = 1000) => queries.sweep(windowStart(clock.now()), limit),
  };
}

export type Throttle = ReturnType<typeof createThrottle>;

