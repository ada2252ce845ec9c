import { expect } from 'chai';
import type supertest from 'supertest';
import type { Page } from 'playwright-core';
import type { Registry } from '../../src/registry.ts';
import { AppError } from '../../src/shared/errors.ts';
import { csrfFrom } from './login-driver.ts';
import { testDatabase } from './db.ts';

/**
 * Makes every refusable hash (`hash`, `verify`) fail as the hasher does when its queue is full
 * (`login.busy`), until `restore`. The real queue's refusal is tested on its own in
 * test/integration/login/overload.test.ts; this reaches the same error from any form at once.
 * The hashes a step makes after its first check (`rehash`, `compareLegacy` without `first`) are
 * left alone: they are never refused (decision 0056).
 */
export function refuseHashes(registry: Registry): { restore(): void; refused(): number } {
  const { hasher } = registry;
  const { hash, verify, compareLegacy } = hasher;
  let refused = 0;
  const busy = async (): Promise<never> => {
    refused += 1;
    throw new AppError('login.busy', 503);
  };
  hasher.hash = busy;
  hasher.verify = busy;
  hasher.compareLegacy = (legacyHash, password, options) => (options?.first ? busy() : compareLegacy(legacyHash, password, options));
  return {
    restore() {
      hasher.hash = hash;
      hasher.verify = verify;
      hasher.compareLegacy = compareLegacy;
    },
    refused: () => refused,
  };
}

/**
 * The busy answer of a form (decisions 0061, 0063): 503, Retry-After, not cached, the busy message
 * above the same form (posting to `action`), with a CSRF token to send it again, the values
 * `kept` still in it, and none of the passwords typed.
 */
export function expectBusyForm(res: supertest.Response, options: { action: string | RegExp; kept?: string[]; passwords: string[] }): void {
  expect(res.status, res.text.slice(0, 400)).to.equal(503);
  expect(res.headers['retry-after']).to.equal('5');
  expect(res.headers['content-type']).to.match(/^text\/html/);
  expect(res.headers['cache-control']).to.equal('no-store');
  expect(res.text).to.contain('We’re busy right now');
  const actions = [...res.text.matchAll(/<form method="post" action="([^"]+)"/g)].map((m) => m[1]!);
  expect(actions.some((a) => (typeof options.action === 'string' ? a === options.action : options.action.test(a))), `a form posting to ${String(options.action)} among ${actions.join(', ')}`).to.equal(true);
  for (const value of options.kept ?? []) expect(res.text).to.contain(`value="${value}"`);
  for (const password of options.passwords) expect(res.text).not.to.contain(password);
  expect(csrfFrom(res.text)).to.be.a('string').and.not.equal('');
}

/** The password and second-step attempts the throttles count now (a busy answer must add none). */
export async function attemptsCounted(): Promise<number> {
  const db = await testDatabase();
  return (await db.query<{ n: number }>("SELECT coalesce(sum(failures), 0)::int AS n FROM throttles WHERE key LIKE 'password:%' OR key LIKE 'second-step:%'")).rows[0]!.n;
}

/** A test server's settings under which its hashing admits one slow hash (about a second) at a time. */
export const ONE_SLOW_HASH = { passwordHashConcurrency: 1, argon2: { memoryKiB: 65_536, timeCost: 20, parallelism: 1 } };

/**
 * In a real browser, sends a form while the hashing is full (decisions 0061, 0063): a hash of the
 * test's own takes the one place of a server started with `ONE_SLOW_HASH`, `submit` sends the
 * form posting to a URL ending in `path`, and the answer must be the busy page — 503,
 * Retry-After, the busy message — given while the hashing was still full.
 */
export async function submitWhileHashingFull(registry: Registry, page: Page, path: string, submit: () => Promise<void>): Promise<void> {
  const occupying = registry.hasher.hash('occupying the only place');
  const answered = page.waitForResponse((r) => r.url().endsWith(path) && r.request().method() === 'POST');
  await submit();
  const busy = await answered;
  const stillFull = registry.hasher.full();
  await occupying;
  expect(stillFull, 'the occupying hash ended before the form was answered: the test proves nothing').to.equal(true);
  expect(busy.status()).to.equal(503);
  expect(busy.headers()['retry-after']).to.equal('5');
  const alert = page.getByRole('alert');
  await alert.waitFor();
  expect(await alert.textContent()).to.contain('We’re busy right now');
}
