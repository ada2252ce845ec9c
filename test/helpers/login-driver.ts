import supertest from 'supertest';
import { expect } from 'chai';

/** Pulls the CSRF token out of a rendered form. */
export function csrfFrom(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error('no CSRF token on the page');
  return match[1]!;
}

/**
 * Follows a step's 303 to the page that shows its outcome (the password page, the code page, the
 * Trello offer, "Check your email": each a GET of its own, Post/Redirect/Get), as a browser does;
 * any other redirect (another step's page, the engine's resume, the client, an upstream provider)
 * is returned as it is, for the test to look at.
 */
export async function followSteps<R extends { status: number; headers: Record<string, string> }>(agent: { get(path: string): PromiseLike<R> }, res: R): Promise<R> {
  let current = res;
  for (let hop = 0; hop < 5 && current.status === 303 && /^\/interaction\/[^/]+\/(password\?|two-step$|trello\/offer$|trello\/change-email\/code$)/.test(current.headers.location ?? ''); hop += 1) {
    current = await agent.get(current.headers.location!);
  }
  return current;
}

/**
 * Drives the real interaction pages over HTTP as a browser without JavaScript would: follows the
 * engine's redirects, fills the identifier and password forms, and allows consent when asked,
 * until the authorization response is sent to the client's redirect URI.
 */
export class PageDriver {
  readonly agent: ReturnType<typeof supertest.agent>;
  readonly base: string;
  /** Pages seen on the way, by kind, for assertions. */
  readonly seen: string[] = [];
  /** The HTML of the last consent page shown, for assertions on what it lists. */
  consentPage: string | undefined;
  /** The interactions passed through, in order (login, then consent if asked). */
  readonly uids: string[] = [];

  constructor(base: string) {
    this.base = base;
    this.agent = supertest.agent(base);
  }

  path(url: string): string {
    return url.startsWith(this.base) ? url.slice(this.base.length) : url;
  }

  async authorize(authorizationUrl: string, credentials: { email: string; password: string }, options: { consent?: boolean } = {}): Promise<URL> {
    let location = this.path(authorizationUrl);
    for (let step = 0; step < 12; step += 1) {
      if (!location.startsWith('/')) return new URL(location);
      const res = await this.agent.get(location);
      if (res.status === 303 || res.status === 302) {
        location = this.path(res.headers.location!);
        continue;
      }
      expect(res.status, `GET ${location}: ${res.text.slice(0, 300)}`).to.equal(200);
      const uid = /\/interaction\/([^/?]+)/.exec(location)?.[1];
      if (!uid) throw new Error(`unexpected page at ${location}`);
      const csrf = csrfFrom(res.text);
      if (!this.uids.includes(uid)) this.uids.push(uid);
      let done;
      if (res.text.includes(`/interaction/${uid}/consent`)) {
        this.seen.push('consent');
        this.consentPage = res.text;
        if (options.consent === false) {
          done = await this.agent.post(`/interaction/${uid}/abort`).type('form').send({ _csrf: csrf });
        } else {
          done = await this.agent.post(`/interaction/${uid}/consent`).type('form').send({ _csrf: csrf });
        }
      } else {
        this.seen.push('login');
        const identify = await this.agent.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrf, email: credentials.email }).redirects(1);
        expect(identify.status).to.equal(200);
        this.seen.push('password');
        done = await this.agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(identify.text), email: credentials.email, password: credentials.password });
      }
      expect(done.status, done.text.slice(0, 500)).to.equal(303);
      location = this.path(done.headers.location!);
    }
    throw new Error('authorization did not finish within 12 steps');
  }
}
