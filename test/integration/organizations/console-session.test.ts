import { expect } from 'chai';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { logInAgain, signInToAccount, type Agent, postForm as post } from '../../helpers/account-pages.ts';
import type { Clock } from '../../../src/shared/clock.ts';

const ELEVEN_MINUTES = 11 * 60_000;

/**
 * The session behind the account pages and the organization console is held to what the
 * decision point requires (docs/flows/settings.md, decision 0027): the `session` stage before any
 * page — as for a relying party reusing the session at /auth — and the `reauthenticate` stage
 * before any change in the console. An old or weaker session cannot take over an organization.
 *
 * The decision point reads the server's clock and the engine's login time (real time): moving the
 * clock on ages the login without touching anything else.
 */
describe('account pages and console: the session is held to the policy', () => {
  let server: TestServer;
  let now = Date.now();
  const clock: Clock = { now: () => now };

  beforeEach(async () => {
    await resetDatabase();
    now = Date.now();
    server = await startTestServer({ clock });
  });
  afterEach(() => server.close());

  it('refuses every console change from an old session until the person logs in again, then comes back to the organization', async () => {
    const admin = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, admin.email);
    const created = await post(agent, '/admin', '/admin/organizations', { name: 'Acme' });
    expect(created.status, 'a recent login creates the organization').to.equal(303);
    const org = created.headers.location!;
    expect(org).to.match(/^\/admin\/organizations\/org_[A-Za-z0-9_-]+$/);

    now += ELEVEN_MINUTES;
    const pagesStillOpen = await agent.get(`${org}/admins`);
    expect(pagesStillOpen.status, 'reading stays open').to.equal(200);
    const invite = await post(agent, `${org}/admins`, `${org}/invitations`, { email: 'attacker@evil.example' });
    expect(invite.status).to.equal(403);
    expect(invite.text).to.contain('Confirm it’s you');
    const domain = await post(agent, `${org}/domains`, `${org}/domains`, { domain: 'acme.example' });
    expect(domain.status).to.equal(403);
    const invitations = await server.registry.db.query('SELECT 1 FROM organization_invitations');
    const domains = await server.registry.db.query('SELECT 1 FROM organization_domains');
    expect(invitations.rows.length + domains.rows.length, 'nothing changed').to.equal(0);

    // "Log in again" comes back to the organization (its id is mixed case), and the change goes through.
    const href = /id="log-in-again" href="([^"]+)"/.exec(invite.text)![1]!;
    now = Date.now();
    expect(await logInAgain(agent, server.url, href, { email: admin.email })).to.equal(org);
    expect((await post(agent, `${org}/admins`, `${org}/invitations`, { email: 'colleague@example.com' })).status).to.equal(303);
  });

  it('sends a session that no longer meets the account policy to log in again, from the account pages and the console alike', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    expect((await agent.get('/account')).status).to.equal(200);
    expect((await agent.get('/admin')).status).to.equal(200);
    const csrf = csrfFrom((await agent.get('/account/profile')).text);

    // Two-step became required after this one-factor login.
    await server.registry.db.query('UPDATE accounts SET two_step_required = true WHERE id = $1', [account.id]);
    for (const path of ['/account', '/account/security', '/admin']) {
      const res = await agent.get(path);
      expect(res.status, path).to.equal(303);
      expect(res.headers.location, path).to.equal(`/account/login?reauth=1&next=${encodeURIComponent(path)}`);
    }
    const form = await agent.post('/account/profile').type('form').send({ _csrf: csrf, name: 'Changed' });
    expect(form.status, 'a form posted meanwhile changes nothing').to.equal(401);
    expect((await server.registry.accounts.findById(account.id))?.name).not.to.equal('Changed');

    // Back as it was: the same session is good again (the decision point, not a flag, decided).
    await server.registry.db.query('UPDATE accounts SET two_step_required = false WHERE id = $1', [account.id]);
    expect((await agent.get('/account')).status).to.equal(200);
  });
});
