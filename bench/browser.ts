import { createHash, randomBytes } from 'node:crypto';

/**
 * The smallest browser the benchmark needs: fetch with a cookie jar and no automatic redirects.
 * The load generator shares the CPU with the servers, so it stays light: no HTML parsing beyond
 * one regular expression, no supertest.
 */
export type Browser = (path: string, init?: RequestInit) => Promise<Response>;

export function browser(base: string): Browser {
  const jar = new Map<string, string>();
  return async (path, init = {}) => {
    const headers: Record<string, string> = { ...(init.headers as Record<string, string> | undefined) };
    if (jar.size) headers.cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const res = await fetch(new URL(path, base), { ...init, redirect: 'manual', headers });
    for (const line of res.headers.getSetCookie()) {
      const pair = line.split(';', 1)[0]!;
      const at = pair.indexOf('=');
      const name = pair.slice(0, at);
      const value = pair.slice(at + 1);
      // An expired cookie (the engine clears interaction cookies this way) leaves the jar.
      if (!value || /expires=Thu, 01 Jan 1970/i.test(line)) jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  };
}

/** Pulls the CSRF token out of a rendered form. */
export function csrfFrom(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error(`no CSRF token on the page: ${html.slice(0, 200)}`);
  return match[1]!;
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

export const form = (fields: Record<string, string>): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
});

/** The path of a Location header relative to `base` (the engine answers with absolute URLs). */
export function locationOf(res: Response, base: string): string {
  const location = res.headers.get('location');
  if (!location) throw new Error(`expected a redirect, got ${res.status}`);
  return location.startsWith(base) ? location.slice(base.length) : location;
}
