import type { Context } from 'koa';
import type { SecretBox } from '../shared/crypto.ts';

/**
 * Short-lived state kept in the browser, sealed with SECRET_KEY (AES-GCM: neither readable nor
 * forgeable) and bound to a context string (an interaction or session id), so a cookie carried
 * to another interaction or session opens to nothing. HttpOnly, SameSite=Lax; the expiry is
 * inside the sealed value, not only in the cookie's Max-Age.
 */
export function sealedCookie<T extends object>(box: SecretBox, now: () => number, options: { name: string; ttlSeconds: number }) {
  const { name, ttlSeconds } = options;
  return {
    set(ctx: Context, path: string, context: string, value: T): void {
      const sealed = box.seal(JSON.stringify({ value, exp: Math.floor(now() / 1000) + ttlSeconds }), context);
      ctx.cookies.set(name, sealed, { httpOnly: true, sameSite: 'lax', secure: ctx.secure, path, signed: false, overwrite: true, maxAge: ttlSeconds * 1000 });
    },

    /** The value, if the cookie is there, opens under `context` and has not expired. */
    get(ctx: Context, context: string): T | undefined {
      try {
        const raw = ctx.cookies.get(name);
        const kept = raw ? (JSON.parse(box.open(raw, context)) as { value: T; exp: number }) : undefined;
        return kept && kept.exp > now() / 1000 ? kept.value : undefined;
      } catch {
        return undefined;
      }
    },

    clear(ctx: Context, path: string): void {
      ctx.cookies.set(name, null, { path });
    },
  };
}
