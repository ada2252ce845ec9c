import type { Context } from 'koa';

/**
 * One outcome carried across a redirect, so a form that succeeded answers with 303 to its page
 * (Post/Redirect/Get): reloading the page then shows it again instead of sending the form a
 * second time (a changed password re-sent with the old one would fail, and count as a guess).
 * Signed with the cookie keys, HttpOnly, a minute long, read once.
 */
export function flashMessages(options: { name: string; path: string }) {
  const { name, path } = options;
  /** The outcome, left in place: a page that shows it again on a reload (within the minute). */
  const peek = (ctx: Context): Record<string, string> => {
    const raw = ctx.cookies.get(name, { signed: true });
    if (raw === undefined) return {};
    try {
      const value = JSON.parse(Buffer.from(raw, 'base64url').toString()) as unknown;
      return value && typeof value === 'object' && !Array.isArray(value) ? Object.fromEntries(Object.entries(value).filter(([, v]) => typeof v === 'string')) as Record<string, string> : {};
    } catch {
      return {};
    }
  };
  return {
    set(ctx: Context, value: Record<string, string>): void {
      ctx.cookies.set(name, Buffer.from(JSON.stringify(value)).toString('base64url'), { signed: true, httpOnly: true, sameSite: 'lax', secure: ctx.secure, path, maxAge: 60_000, overwrite: true });
    },
    take(ctx: Context): Record<string, string> {
      const value = peek(ctx);
      if (ctx.cookies.get(name, { signed: true }) !== undefined) ctx.cookies.set(name, null, { path });
      return value;
    },
    peek,
    /**
     * An outcome's own page (the GET a form's 303 leads to): the outcome named `done`, left in
     * place so a reload within the minute shows the page again; without it (another browser, the
     * minute over) the answer is a 303 to `elsewhere`, and undefined.
     */
    shown(ctx: Context, done: string, elsewhere: string): Record<string, string> | undefined {
      const outcome = peek(ctx);
      if (outcome.done === done) return outcome;
      ctx.status = 303;
      ctx.redirect(elsewhere);
      return undefined;
    },
  };
}
