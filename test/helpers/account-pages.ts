import supertest from 'supertest';
import { csrfFrom, followSteps } from './login-driver.ts';
import { PASSWORD } from './factories.ts';

export type Agent = ReturnType<typeof supertest.agent>;

/**
 * Opens /account in a fresh browser-like agent, signing in through the login pages on the way.
 * `status` is 200 when /account was reached, else the status of the failed password step.
 * With `code`, a second step asked for is answered with it.
 */
export async function signInToAccount(base: string, email: string, options: { password?: string; userAgent?: string; code?: () => Promise<string> } = {}): Promise<{ agent: Agent; status: number }> {
  const agent = supertest.agent(base).set('User-Agent', options.userAgent ?? 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36');
  let location = '/account';
  for (let step = 0; step < 12; step += 1) {
    const res = await agent.get(location);
    if (res.status === 303 || res.status === 302) {
      location = res.headers.location!.replace(base, '');
      continue;
    }
    if (location === '/account') return { agent, status: res.status };
    const uid = /\/interaction\/([^/?]+)/.exec(location)?.[1];
    if (!uid) throw new Error(`unexpected page ${location}: ${res.status}`);
    const identify = await agent.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(res.text), email }).redirects(1);
    let done = await followSteps(agent, await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(identify.text), email, password: options.password ?? PASSWORD }));
    // Two-step verification on: the code, when the caller has one.
    if (done.status === 200 && options.code) done = await agent.post(`/interaction/${uid}/two-step`).type('form').send({ _csrf: csrfFrom(done.text), code: await options.code() });
    if (done.status !== 303) return { agent, status: done.status };
    location = done.headers.location!.replace(base, '');
  }
  throw new Error('did not reach /account');
}

/**
 * Posts a form found on `formPath` (for its CSRF token) to `path`; the page must open (200), or the
 * test stops there with its path.
 */
export async function postForm(agent: Agent, formPath: string, path: string, fields: Record<string, string> = {}) {
  const form = await agent.get(formPath);
  if (form.status !== 200) throw new Error(`GET ${formPath}: expected 200, got ${form.status}`);
  return agent.post(path).type('form').send({ _csrf: csrfFrom(form.text), ...fields });
}

/** Submits a settings form: loads `formPath` for its CSRF token, then posts `fields` to `path`. */
export async function submit(agent: Agent, formPath: string, path: string, fields: Record<string, string> = {}) {
  const form = await agent.get(formPath);
  return agent.post(path).type('form').send({ _csrf: csrfFrom(form.text), ...fields });
}

/**
 * Follows a "Log in again" link (a settings or console page's `signInAgain`) through the login
 * pages — the address, the password and, when asked and given, the code — back to the page it
 * returns to; returns that page's path.
 */
export async function logInAgain(agent: Agent, base: string, href: string, proof: { email: string; password?: string; code?: () => Promise<string> }): Promise<string> {
  let location = href.replace(/&amp;/g, '&');
  for (let step = 0; step < 15; step += 1) {
    const res = await agent.get(location);
    if (res.status === 302 || res.status === 303) {
      location = res.headers.location!.replace(base, '');
      continue;
    }
    const uid = /^\/interaction\/([^/?]+)$/.exec(location)?.[1];
    if (!uid) return location;
    const identify = await agent.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(res.text), email: proof.email }).redirects(1);
    let done = await followSteps(agent, await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(identify.text), email: proof.email, password: proof.password ?? PASSWORD }));
    if (done.status === 200 && proof.code) done = await agent.post(`/interaction/${uid}/two-step`).type('form').send({ _csrf: csrfFrom(done.text), code: await proof.code() });
    if (done.status !== 303) throw new Error(`logging in again: ${done.status} ${done.text.slice(0, 300)}`);
    location = done.headers.location!.replace(base, '');
  }
  throw new Error('did not come back from logging in again');
}
