import supertest from 'supertest';
import { generate } from 'otplib';
import type { Registry } from '../../src/registry.ts';
import type { AccountRow } from '../../src/persistence/queries/accounts.ts';
import { csrfFrom, followSteps } from './login-driver.ts';
import { PASSWORD } from './factories.ts';
import { startInteraction } from './authorization.ts';

/** The code an authenticator app shows at `atMs` for `secret` (RFC 6238, 30-second steps). */
export function totpAt(secret: string, atMs: number): Promise<string> {
  return generate({ secret, epoch: Math.floor(atMs / 1000) });
}

/** Turns two-step verification on for `account` through the service, as the settings page would. */
export async function enrolTwoStep(registry: Registry, account: AccountRow): Promise<{ secret: string; recoveryCodes: string[] }> {
  const enrolment = await registry.twoStep.startEnrolment(account);
  if ('problem' in enrolment) throw new Error(enrolment.problem);
  const result = await registry.twoStep.confirmEnrolment(account, enrolment.secret, await totpAt(enrolment.secret, registry.clock.now()), {});
  if (!result.ok) throw new Error(result.problem);
  return { secret: enrolment.secret, recoveryCodes: result.recoveryCodes };
}

/** Starts an authorization and passes the password step; returns the page that follows (and the form's own answer). */
export async function passPassword(base: string, client: { clientId: string; redirectUri: string }, email: string, password = PASSWORD) {
  const agent = supertest.agent(base);
  const uid = await startInteraction(agent, client);
  const login = await agent.get(`/interaction/${uid}`);
  const identify = await agent.post(`/interaction/${uid}/identify`).type('form').send({ _csrf: csrfFrom(login.text), email }).redirects(1);
  // `posted`: the password form's own answer; `page`: where a browser lands (its 303 followed to the step's page).
  const posted = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(identify.text), email, password });
  const page = await followSteps(agent, posted);
  return { agent, uid, page, posted };
}

/** Follows redirects from `location` until one leaves the server; returns that URL. */
export async function followToCallback(agent: ReturnType<typeof supertest.agent>, base: string, location: string): Promise<URL> {
  let next = location;
  for (let i = 0; i < 10; i += 1) {
    const url = new URL(next, base);
    if (url.origin !== base) return url;
    const res = await agent.get(url.pathname + url.search);
    if (res.status !== 302 && res.status !== 303) throw new Error(`GET ${url.pathname}: ${res.status} ${res.text.slice(0, 200)}`);
    next = res.headers.location!;
  }
  throw new Error('no callback after 10 redirects');
}
