import type { Context } from 'koa';
import { constantTimeEqual } from '../shared/crypto.ts';
import { randomSecret } from '../shared/ids.ts';

const NAME = 'lanyard.device';
/** How many sign-ins one browser remembers (a shared family computer, a few accounts). */
const MAX_ENTRIES = 5;
const MAX_AGE_MS = 365 * 86_400_000;
const ENTRY = /^[A-Za-z0-9_-]{10,40}\.[A-Za-z0-9_-]{10,40}$/;

/**
 * Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies";
 * docs/decisions/0022-device-cookies-and-client-addresses.md). After a browser proves a password for a subject (the
 * address typed), it receives a signed cookie naming that subject — by a keyed tag, not in
 * clear — and a random device id. Later attempts for that subject from that browser are
 * throttled under the device's own counter, so a stranger's failures against the address, or
 * from the same client address, never hold the owner back on a device they have used before.
 *
 * Signed with the cookie keys (Koa's keygrip: the newest signs, every listed key verifies), so
 * rotating COOKIE_KEYS keeps devices known. HttpOnly, SameSite=Lax, path /; with an https ISSUER
 * Secure and `__Host-` prefixed.
 */
export interface DeviceCookies {
  /** The device id, if this browser has signed in to `subject` before. */
  known(ctx: Context, subject: string): string | undefined;
  /** After a proven password: remember `subject` on this browser, under a fresh device id. */
  remember(ctx: Context, subject: string): void;
}

export function deviceCookies(options: { tag: (subject: string) => string }): DeviceCookies {
  const name = (ctx: Context) => (ctx.secure ? `__Host-${NAME}` : NAME);

  function entries(ctx: Context): { tag: string; id: string }[] {
    const raw = ctx.cookies.get(name(ctx), { signed: true }) ?? '';
    return raw.split('~').filter((e) => ENTRY.test(e)).slice(0, MAX_ENTRIES).map((e) => {
      const [tag, id] = e.split('.') as [string, string];
      return { tag, id };
    });
  }

  return {
    known(ctx, subject) {
      const tag = options.tag(subject);
      let found: string | undefined;
      // Every entry is compared, in constant time, whichever matches.
      for (const entry of entries(ctx)) if (constantTimeEqual(entry.tag, tag)) found = entry.id;
      return found;
    },
    remember(ctx, subject) {
      const tag = options.tag(subject);
      const kept = entries(ctx).filter((e) => e.tag !== tag);
      const value = [{ tag, id: randomSecret(16) }, ...kept].slice(0, MAX_ENTRIES).map((e) => `${e.tag}.${e.id}`).join('~');
      ctx.cookies.set(name(ctx), value, { signed: true, httpOnly: true, sameSite: 'lax', secure: ctx.secure, path: '/', maxAge: MAX_AGE_MS, overwrite: true });
    },
  };
}
