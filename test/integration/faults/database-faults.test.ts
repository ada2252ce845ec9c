import { expect } from 'chai';
import Koa from 'koa';
import supertest from 'supertest';
import { openDatabase, DatabaseUnavailableError, type Database } from '../../../src/persistence/db.ts';
import { healthRoutes } from '../../../src/routes/health.ts';
import { serverUrl, testDatabase } from '../../helpers/db.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.ts';
import { createAccount, createClient } from '../../helpers/factories.ts';
import { authorizationPath, startInteraction } from '../../helpers/authorization.ts';

/**
 * Database faults, for real: the application's pool reaches the PostgreSQL server through a TCP
 * proxy that the test stops (connection refused, connections cut) or freezes (bytes held, as
 * under SIGSTOP). Server only: the embedded engine runs in-process and cannot fail this way.
 */
describe('database faults (stopped or frozen PostgreSQL server)', function () {
  this.timeout(30_000);
  let proxy: TcpProxy;
  let db: Database;
  let app: TestServer;
  let service: { clientId: string; clientSecret: string | undefined };
  let web: { clientId: string; redirectUri: string };
  let accountId: string;

  const token = () => supertest(app.url).post('/token').auth(service.clientId, service.clientSecret!).type('form').send({ grant_type: 'client_credentials' });

  before(async function () {
    if (!serverUrl) this.skip();
    const schema = (await (await testDatabase()).query<{ schema: string }>('SELECT current_schema() AS schema')).rows[0]!.schema;
    const target = new URL(serverUrl);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    // Tight bounds, so a frozen database is detected in about two seconds.
    db = await openDatabase({ url: proxy.urlFor(serverUrl), schema, poolSize: 4, timeouts: { connectMs: 1_000, statementMs: 1_500, idleInTransactionMs: 5_000 } });
    app = await startTestServer({ db });
    service = await createClient(app.registry, { kind: 'service' });
    web = await createClient(app.registry);
    accountId = (await createAccount(app.registry)).id;
  });

  after(async () => {
    proxy?.resume();
    await proxy?.start().catch(() => {});
    await app?.close();
    await db?.close();
    await proxy?.close();
  });

  it('has every statement bounded by the server (statement_timeout)', async () => {
    const started = Date.now();
    const err = await db.query('SELECT pg_sleep(10)').then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(DatabaseUnavailableError);
    expect((err as Error).message).to.equal('database unavailable (statement timeout)');
    // Cancelled by the server long before the sleep would have ended.
    expect(Date.now() - started).to.be.below(9_000);
  });

  it('ends a transaction left idle on the server (idle_in_transaction_session_timeout), and the pool carries on', async () => {
    const schema = (await db.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]!.s;
    const short = await openDatabase({ url: serverUrl!, schema, poolSize: 1, timeouts: { connectMs: 1_000, statementMs: 1_500, idleInTransactionMs: 1_000 } });
    try {
      const err = await short.transaction(async (tx) => {
        await tx.query('SELECT 1');
        await new Promise((resolve) => setTimeout(resolve, 3_000)); // idle three times the bound
        await tx.query('SELECT 1');
      }).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(DatabaseUnavailableError);
      // The one pooled connection was dropped, not reused: the next query gets a fresh one.
      expect((await short.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).to.equal(1);
    } finally {
      await short.close();
    }
  });

  it('answers 503 with Retry-After while the server is stopped, and serves again once it is back', async () => {
    expect((await token()).status).to.equal(200);
    const agent = supertest.agent(app.url);
    const uid = await startInteraction(agent, web);

    await proxy.stop();

    const tokenRes = await token();
    expect(tokenRes.status).to.equal(503);
    expect(tokenRes.headers['retry-after']).to.equal('5');
    expect(tokenRes.body).to.deep.include({ error: 'temporarily_unavailable' });

    const auth = await supertest(app.url).get(authorizationPath(web)).set('Accept', 'text/html');
    expect(auth.status).to.equal(503);
    expect(auth.headers['retry-after']).to.equal('5');
    expect(auth.text).to.contain('We’ll be right back');
    expect(auth.text).not.to.contain('Something went wrong');

    // Our own pages: the login page (the engine's interaction) and an API reading the database.
    const login = await agent.get(`/interaction/${uid}`).set('Accept', 'text/html');
    expect(login.status).to.equal(503);
    expect(login.headers['retry-after']).to.equal('5');
    expect(login.text).to.contain('We’ll be right back');
    const profile = await supertest(app.url).get(`/api/profiles/${accountId}`).set('Accept', 'application/json');
    expect(profile.status).to.equal(503);
    expect(profile.headers['retry-after']).to.equal('5');
    expect(profile.body).to.deep.include({ error: 'server.unavailable' });

    const ready = await supertest(app.url).get('/readyz');
    expect(ready.status).to.equal(503);
    expect(ready.body).to.deep.equal({ status: 'not_ready', reason: 'database unreachable' });

    await proxy.start();
    expect((await token()).status).to.equal(200);
    expect((await supertest(app.url).get('/readyz')).status).to.equal(200);
    expect((await agent.get(`/interaction/${uid}`)).status).to.equal(200);
  });

  it('answers 503 within the statement bound while the server is frozen, and recovers on resume', async () => {
    expect((await token()).status).to.equal(200); // a pooled connection exists and will be frozen
    proxy.freeze();
    try {
      const [first, second] = await Promise.all([token(), token()]);
      for (const res of [first, second]) {
        expect(res.status).to.equal(503);
        expect(res.body).to.deep.include({ error: 'temporarily_unavailable' });
        expect(res.headers['retry-after']).to.equal('5');
      }
    } finally {
      proxy.resume();
    }
    expect((await token()).status).to.equal(200);
  });

  it('/readyz answers within a second while the server is frozen, even when the pool would wait far longer', async () => {
    // A pool with generous bounds: only the readiness budget can explain a quick answer.
    const patient = await openDatabase({ url: proxy.urlFor(serverUrl!), schema: (await db.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]!.s, poolSize: 2, timeouts: { connectMs: 20_000, statementMs: 20_000, idleInTransactionMs: 30_000 } });
    const probe = new Koa();
    probe.use(healthRoutes(patient).routes());
    const server = probe.listen(0, '127.0.0.1');
    try {
      const request = () => supertest(server).get('/readyz');
      expect((await request()).status).to.equal(200);
      proxy.freeze();
      const started = Date.now();
      const [a, b] = await Promise.all([request(), request()]);
      const elapsed = Date.now() - started;
      expect(a.status).to.equal(503);
      expect(b.status).to.equal(503);
      expect(a.body).to.deep.equal({ status: 'not_ready', reason: 'database unreachable' });
      // The pool would answer after 20 s; the probe's budget is 0.8 s (margin for a loaded machine).
      expect(elapsed).to.be.below(5_000);
    } finally {
      proxy.resume();
      server.close();
      await patient.close();
    }
  });
});
