import { expect } from 'chai';
import fc from 'fast-check';
import supertest from 'supertest';
import { request } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { resetDatabase } from '../helpers/db.ts';
import { createAccount, createClient } from '../helpers/factories.ts';
import { startInteraction } from '../helpers/authorization.ts';
import { csrfFrom } from '../helpers/login-driver.ts';
import { signInToAccount, type Agent } from '../helpers/account-pages.ts';
import { startUpstreamIdp } from '../helpers/upstream-idp.ts';
import { captureLogs, type CapturedLogs } from '../helpers/log-capture.ts';
import {
  bodyArb, bodyBytes, bytesOf, contentTypeArb, encode, encodePairs, encodingArb, headersArb, methodArb, pairsArb, pct, STANDARD_METHODS, valueArb,
  type Body, type Fixtures, type Value,
} from './hostile-request.ts';

/**
 * Property: whatever arrives on any route — random and malformed parameters, bodies, headers,
 * cookies, huge values, invalid UTF-8, NUL bytes, deep JSON, wrong content types and encodings —
 * the answer is below 500, nothing logs at error level, the process keeps serving, its heap stays
 * bounded and nothing is written.
 *
 * The routes are not listed by hand: ours come from the app's routers (`routeTable`), the
 * engine's from its discovery document, so a new route is fuzzed the day it lands.
 *
 * Fixed seed and bounded runs for CI; FUZZ_SEED and FUZZ_RUNS override them. A failure prints the
 * seed, the shrunk counter-example and the route, enough to replay it (FUZZ_SEED, FUZZ_ROUTE).
 */
const SEED = Number(process.env.FUZZ_SEED ?? 0x1a9a2d);
const RUNS = Number(process.env.FUZZ_RUNS ?? 8);
/** Replays one route: the failure message names it (e.g. FUZZ_ROUTE='POST /token'). */
const ONLY = process.env.FUZZ_ROUTE;

/**
 * Tables a hostile request may change, and why. Every other table must keep its exact contents.
 * - throttles: attempts are counted before they are checked (docs/decisions on throttling), so a
 *   refused guess still charges its counter;
 * - security_events: refused sign-ins are part of the audit trail;
 * - oidc_payloads, models Interaction and Session: a well-formed authorization request starts an
 *   interaction (whose pages record their progress in it), and the engine saves or refreshes the
 *   browser's session at the end of an authorization or logout request;
 * - session_activity: the signed-in fixture's "last used" moves as it browses.
 */
const MAY_CHANGE = new Set(['throttles', 'security_events', 'session_activity', 'schema_migrations']);

interface Case {
  method: string;
  params: Value[];
  query: Array<[Value, Value]>;
  identity: 'none' | 'garbage' | 'anonymous' | 'signed-in' | 'tampered';
  garbageCookie: string;
  csrf: 'none' | 'body' | 'header' | 'query' | 'forged';
  basicAuth: 'none' | 'client' | 'wrong';
  headers: Record<string, string>;
  body: Body;
  contentType: string | null;
  encoding: { name: string | null; compress: boolean };
}

describe('property: every route answers hostile input without failing', function () {
  this.timeout(180_000);
  let server: TestServer;
  let upstream: Awaited<ReturnType<typeof startUpstreamIdp>>;
  let logs: CapturedLogs;
  let fixtures: Fixtures;
  let signedIn: Agent;
  let anonymous: Agent;
  let heapBefore = 0;
  const routes: Array<{ methods: string[]; path: string }> = [];

  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;

  const snapshot = async () => {
    const db = server.registry.db;
    const { rows: tables } = await db.query<{ name: string }>(`SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1`);
    const out: Record<string, string> = {};
    for (const { name } of tables) {
      if (MAY_CHANGE.has(name)) continue;
      if (name === 'oidc_payloads') {
        const { rows } = await db.query<{ model: string; n: string; sum: string | null }>(`SELECT model, count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS sum FROM oidc_payloads t WHERE t.model NOT IN ('Interaction', 'Session') GROUP BY model`);
        for (const r of rows) out[`oidc_payloads:${r.model}`] = `${r.n}:${r.sum}`;
        continue;
      }
      const { rows } = await db.query<{ n: string; sum: string | null }>(`SELECT count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS sum FROM "${name}" t`);
      out[name] = `${rows[0]!.n}:${rows[0]!.sum}`;
    }
    return out;
  };

  const cookiesFor = async (agent: Agent, path: string) =>
    (await agent.jar.getCookies({ domain: '127.0.0.1', path, secure: false, script: false })).map((c) => `${c.name}=${c.value}`);

  before(async function () {
    this.timeout(120_000);
    await resetDatabase();
    logs = captureLogs('info');
    upstream = await startUpstreamIdp();
    server = await startTestServer({
      logger: logs.logger,
      overrides: { devMailbox: true, google: { issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret } },
    });
    upstream.configure(`${server.url}/login/google/callback`);
    const client = await createClient(server.registry, { firstParty: true });
    const account = await createAccount(server.registry);
    signedIn = (await signInToAccount(server.url, account.email)).agent;
    anonymous = supertest.agent(server.url);
    const uid = await startInteraction(anonymous, client);
    fixtures = { clientId: client.clientId, clientSecret: client.clientSecret!, redirectUri: client.redirectUri, accountId: account.id, email: account.email, uid, csrf: csrfFrom((await anonymous.get(`/interaction/${uid}`)).text) };

    // Ours from the routers, the engine's from discovery (plus the paths discovery does not name).
    routes.push(...server.routeTable);
    const discovery = (await supertest(server.url).get('/.well-known/openid-configuration')).body as Record<string, unknown>;
    const engine = new Set(['/.well-known/openid-configuration', '/session/end/confirm', '/session/end/success', '/auth/:uid']);
    for (const [key, value] of Object.entries(discovery)) {
      if ((key.endsWith('_endpoint') || key === 'jwks_uri') && typeof value === 'string' && value.startsWith(server.url)) engine.add(new URL(value).pathname);
    }
    for (const path of engine) routes.push({ methods: ['GET', 'POST'], path });
    routes.push({ methods: ['GET', 'POST'], path: '/:nowhere' });
    gc();
    heapBefore = process.memoryUsage().heapUsed;
  });

  after(async () => {
    await server?.close();
    await upstream?.close();
  });

  /** Sends one request exactly as described, bytes and all; resolves with the status. */
  async function send(route: { path: string }, c: Case): Promise<number> {
    let i = 0;
    const path = route.path.replace(/:[A-Za-z]+/g, () => pct(bytesOf(c.params[i++] ?? '')));
    const query = [...c.query];
    if (c.csrf === 'query') query.unshift(['_csrf', fixtures.csrf]);
    const target = query.length ? `${path}?${encodePairs(query)}` : path;

    const headers: Record<string, string> = { ...c.headers };
    const cookies: string[] = [];
    if (c.identity === 'garbage') cookies.push(c.garbageCookie);
    if (c.identity === 'anonymous') cookies.push(...(await cookiesFor(anonymous, path)));
    // The signed-in browser never comes with a CSRF cookie: a valid session with a valid token
    // could legitimately change things, which is not what this property is about.
    if (c.identity === 'signed-in') cookies.push(...(await cookiesFor(signedIn, path)).filter((k) => !k.startsWith('lanyard.csrf=')));
    if (c.identity === 'tampered') cookies.push(...(await cookiesFor(signedIn, path)).map((k) => `${k.slice(0, -2)}${c.garbageCookie.slice(0, 2)}`));
    if (cookies.length) headers.cookie = cookies.join('; ');
    if (c.csrf === 'header') headers['x-csrf-token'] = fixtures.csrf;
    if (c.csrf === 'forged') headers['x-csrf-token'] = `${fixtures.csrf.slice(0, -1)}x`;
    if (c.basicAuth === 'client') headers.authorization = `Basic ${Buffer.from(`${fixtures.clientId}:${fixtures.clientSecret}`).toString('base64')}`;
    if (c.basicAuth === 'wrong') headers.authorization = `Basic ${Buffer.from(`${fixtures.clientId}:nope`).toString('base64')}`;

    const { bytes, type } = bodyBytes(c.body, c.csrf === 'body' ? fixtures.csrf : undefined);
    const contentType = c.contentType ?? type;
    if (contentType !== undefined && bytes) headers['content-type'] = contentType;
    const payload = bytes ? encode(bytes, c.encoding) : undefined;
    if (c.encoding.name && payload) headers['content-encoding'] = c.encoding.name;
    if (payload) headers['content-length'] = String(payload.length);

    const { port } = new URL(server.url);
    return new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: c.method, path: target, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
        res.on('error', reject);
      });
      // The server may answer and close before taking the whole body (a refused upload): that
      // is an answer, not a failure.
      let answered = false;
      req.on('response', () => (answered = true));
      // Headers longer than Node's limit (16 KiB) are answered 431 and the socket is closed by
      // the HTTP parser, before any route runs; a large body still being written then meets a
      // reset that can arrive before the 431 is read. That is the server refusing, not failing.
      const headerBytes = Buffer.byteLength(target) + Object.entries(headers).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v) + 4, 0);
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (answered) return;
        if (headerBytes > 16 * 1024 && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) return resolve(431);
        reject(err);
      });
      req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
      req.end(payload);
    });
  }

  function caseArb(route: { methods: string[]; path: string }): fc.Arbitrary<Case> {
    const paramCount = (route.path.match(/:[A-Za-z]+/g) ?? []).length;
    return fc.record({
      method: methodArb(route.methods),
      params: fc.array(valueArb(fixtures), { minLength: paramCount, maxLength: paramCount }),
      query: pairsArb(fixtures),
      identity: fc.constantFrom('none', 'garbage', 'anonymous', 'signed-in', 'tampered'),
      garbageCookie: fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((n) => String.fromCharCode(n)), minLength: 2, maxLength: 60 }),
      csrf: fc.constantFrom('none', 'body', 'header', 'query', 'forged'),
      basicAuth: fc.constantFrom('none', 'none', 'client', 'wrong'),
      headers: headersArb,
      body: bodyArb(fixtures),
      contentType: contentTypeArb,
      encoding: encodingArb,
    }) as fc.Arbitrary<Case>;
  }

  it('has every route of ours and of the engine in its table', () => {
    const paths = routes.map((r) => r.path);
    // A sample from each router and the engine: the table is built, not typed in.
    for (const path of ['/healthz', '/api/profiles/:id', '/account/avatar', '/interaction/:uid/identify', '/password/forgot', '/login/google/callback', '/dev/mailbox', '/token', '/auth', '/me', '/session/end']) {
      expect(paths, path).to.include(path);
    }
    expect(routes.length).to.be.greaterThan(60);
  });

  it('answers below 500 on every route, logs no error and writes nothing', async () => {
    const before = await snapshot();
    const failures: string[] = [];
    for (const [index, route] of routes.entries()) {
      if (ONLY && !route.methods.some((m) => `${m} ${route.path}` === ONLY)) continue;
      logs.clear();
      const seed = SEED + index;
      const result = await fc.check(
        fc.asyncProperty(caseArb(route), async (c) => {
          const status = await send(route, c);
          // 501 is the answer to a method nothing here implements (RFC 9110 §15.6.2), never to a standard one.
          return status < 500 || (status === 501 && !STANDARD_METHODS.has(c.method));
        }),
        { seed, numRuns: RUNS },
      );
      if (result.failed) {
        failures.push(`${route.methods.join('|')} ${route.path}: seed ${seed} (FUZZ_SEED=${SEED}, route #${index}), counter-example ${fc.stringify(result.counterexample)}${result.errorInstance ? `, error ${String(result.errorInstance)}` : ''}`);
        continue;
      }
      const errors = logs.atLeast(50);
      if (errors.length) failures.push(`${route.methods.join('|')} ${route.path}: seed ${seed}: error-level log ${JSON.stringify(errors[0]).slice(0, 600)}`);
      const after = await snapshot();
      const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((t) => before[t] !== after[t]);
      if (changed.length) failures.push(`${route.methods.join('|')} ${route.path}: seed ${seed}: wrote to ${changed.join(', ')}`);
      Object.assign(before, after);
    }
    expect(failures, `FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}\n${failures.join('\n')}`).to.deep.equal([]);

    expect((await supertest(server.url).get('/healthz')).status, 'still serving').to.equal(200);
    gc();
    const grown = process.memoryUsage().heapUsed - heapBefore;
    expect(grown, `heap grew by ${Math.round(grown / 1e6)} MB`).to.be.below(64 * 1024 * 1024);
  });
});
