import { expect } from 'chai';
import supertest from 'supertest';
import { DatabaseUnavailableError, type Database } from '../../../src/persistence/db.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase, testDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { startInteraction } from '../../helpers/authorization.ts';

/**
 * A correct password's consequences — the interaction's result, the audit row, the throttle
 * cleared — are stored in one statement at the end of the request (decision 0050): all of them or
 * none. The same request resumes the authorization (decision 0079), so that statement also ends
 * the interaction and stores the session and the code. The database is wrapped so that the statement storing them can be made to fail the way
 * a database that went away fails.
 */
describe('password login: the success is one commit', function () {
  this.timeout(30_000);
  let server: TestServer;
  let db: Database;
  let client: Awaited<ReturnType<typeof createClient>>;
  let failBatch = false;
  const written: string[] = [];

  before(async () => {
    await resetDatabase();
    db = await testDatabase();
    const failing: Database = {
      ...db,
      query: (sql, params) => {
        if (/^\s*WITH\b/i.test(sql) && /INSERT INTO security_events/.test(sql)) {
          written.push(sql);
          if (failBatch) return Promise.reject(new DatabaseUnavailableError('connection lost'));
        }
        return db.query(sql, params);
      },
      transaction: (fn) => db.transaction(fn),
    };
    server = await startTestServer({ db: failing });
    client = await createClient(server.registry, { firstParty: true });
  });
  after(async () => server.close());

  const succeeded = async (accountId: string) => (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM security_events WHERE account_id = $1 AND type = 'login.succeeded'", [accountId])).rows[0]!.n;
  const throttleRows = async () => (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM throttles WHERE key LIKE 'password:s:%'")).rows[0]!.n;

  it('stores the interaction’s end, the session, the code, the audit row and the throttle’s clearing in the same statement', async () => {
    const account = await createAccount(server.registry);
    const agent = supertest.agent(server.url);
    const uid = await startInteraction(agent, client);
    const csrf = csrfFrom((await agent.get(`/interaction/${uid}`)).text);
    written.length = 0;
    const res = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrf, email: account.email, password: PASSWORD });
    // The browser goes straight back to the client with a code.
    expect(res.status).to.equal(303);
    expect(res.headers.location).to.match(/[?&]code=/);
    expect(written).to.have.length(1);
    expect(written[0]).to.match(/DELETE FROM oidc_payloads/).and.match(/INSERT INTO oidc_payloads/).and.match(/DELETE FROM throttles/)
      .and.match(/INSERT INTO security_events/).and.match(/session_activity/);
    expect(await succeeded(account.id)).to.equal(1);
    expect(await throttleRows()).to.equal(0);
    const rows = await db.query<{ model: string }>("SELECT model FROM oidc_payloads WHERE account_id = $1 ORDER BY model", [account.id]);
    expect(rows.rows.map((r) => r.model)).to.include.members(['AuthorizationCode', 'Session']);
    // The interaction is over: its page says so, and its resume URL has nothing left to resume.
    expect((await agent.get(`/auth/${uid}`)).status).to.equal(400);
  });

  it('stores none of them when that statement fails: 503, no redirect, no cookie, and the same login works once the database is back', async () => {
    await resetDatabase();
    client = await createClient(server.registry, { firstParty: true });
    const account = await createAccount(server.registry);
    const agent = supertest.agent(server.url);
    const uid = await startInteraction(agent, client);
    const csrf = csrfFrom((await agent.get(`/interaction/${uid}`)).text);

    failBatch = true;
    const failed = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrf, email: account.email, password: PASSWORD }).set('accept', 'text/html');
    failBatch = false;
    expect(failed.status).to.equal(503);
    expect(failed.headers['retry-after']).to.equal('5');
    expect(failed.headers.location).to.equal(undefined);
    expect(failed.headers['set-cookie'] ?? []).to.deep.equal([]);
    // Nothing of the success was stored: no audit row, the attempt still counted, the login not finished.
    expect(await succeeded(account.id)).to.equal(0);
    expect(await throttleRows()).to.equal(1);
    const page = await agent.get(`/interaction/${uid}`);
    expect(page.status).to.equal(200);
    expect(page.text).to.contain('name="email"');

    const again = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(page.text), email: account.email, password: PASSWORD });
    expect(again.status).to.equal(303);
    expect(await succeeded(account.id)).to.equal(1);
    expect(await throttleRows()).to.equal(0);
  });

  it('is one statement in a browser already signed in too (prompt=login): the resume reads the session without writing first', async () => {
    const account = await createAccount(server.registry);
    const agent = supertest.agent(server.url);
    const first = await startInteraction(agent, client);
    const firstPage = await agent.get(`/interaction/${first}`);
    const signedIn = await agent.post(`/interaction/${first}/password`).type('form').send({ _csrf: csrfFrom(firstPage.text), email: account.email, password: PASSWORD });
    expect(signedIn.headers.location).to.match(/[?&]code=/);

    const uid = await startInteraction(agent, client, { prompt: 'login' });
    const csrf = csrfFrom((await agent.get(`/interaction/${uid}`)).text);
    failBatch = true;
    written.length = 0;
    const failed = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrf, email: account.email, password: PASSWORD }).set('accept', 'text/html');
    failBatch = false;
    expect(written, 'nothing written before the final statement').to.have.length(1);
    expect(failed.status).to.equal(503);
    expect(failed.headers.location).to.equal(undefined);
    expect(failed.headers['set-cookie'] ?? []).to.deep.equal([]);
    expect(await succeeded(account.id), 'only the first login').to.equal(1);

    written.length = 0;
    const page = await agent.get(`/interaction/${uid}`);
    const again = await agent.post(`/interaction/${uid}/password`).type('form').send({ _csrf: csrfFrom(page.text), email: account.email, password: PASSWORD });
    expect(again.status).to.equal(303);
    expect(again.headers.location).to.match(/[?&]code=/);
    expect(written).to.have.length(1);
    expect(await succeeded(account.id)).to.equal(2);
  });
});
