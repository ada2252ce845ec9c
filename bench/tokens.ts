/**
 * The token endpoints suite of `npm run bench` (BENCH_SUITES=tokens): client_credentials,
 * refresh_token with rotation, userinfo and introspection, each against bare oidc-provider
 * serving the same request with the same kind of token, in the same run. Target per engine:
 * ≥ 0.90× the baseline on a PostgreSQL server, ≥ 0.85× embedded (bench/report.ts, tokenTarget).
 *
 *   node --experimental-strip-types bench/tokens.ts     (this suite alone)
 */
import { basic, browser } from './browser.ts';
import { combineRates, hammer, interleave, passwordPages, baselinePasswordPage, refreshPool, slicesOf, tokensFrom, type LoadJob, type Rate, type SignIn } from './scenarios.ts';
import { printReport, ratioRow, round, tokenTarget, type Row } from './report.ts';
import { settings, standalone, type BenchServers, type SuiteOptions } from './servers.ts';

type Side = 'lanyard' | 'baseline';

const signInsOf = (s: BenchServers): Record<Side, SignIn> => ({
  lanyard: passwordPages(s.lanyard.account.email, s.password),
  baseline: baselinePasswordPage(s.lanyard.account.email, s.password),
});

/** An access token as each server issues it to the first-party web client after a login (opaque: no resource indicator). */
async function accessTokens(s: BenchServers, scope: string): Promise<Record<Side, string>> {
  const signIns = signInsOf(s);
  const out = {} as Record<Side, string>;
  for (const side of ['lanyard', 'baseline'] as const) {
    const json = await tokensFrom(browser(s.urls[side]), s.urls[side], s.clients.web, signIns[side], scope);
    if (!json.access_token) throw new Error(`no access token from ${side}: ${JSON.stringify(json)}`);
    out[side] = json.access_token;
  }
  return out;
}

export async function run(options: SuiteOptions): Promise<Row[]> {
  const s = await options.servers();
  const { log, details } = options;
  const { seconds, warmupSeconds, warmupRounds, connections, slices, refreshPool: POOL, warmupPool } = settings;
  const target = tokenTarget(s.engine);
  const rows: Row[] = [];

  const row = (scenario: string, lSlices: Rate[], bSlices: Rate[], extra = '') => {
    const l = combineRates(lSlices);
    const b = combineRates(bSlices);
    rows.push(ratioRow({
      scenario, unit: 'req/s', lanyard: round(l.rps), baseline: round(b.rps), target,
      notes: `main-thread CPU/request ${round(l.serverCpuMs, 2)}/${round(b.serverCpuMs, 2)} ms; non-2xx ${l.non2xx}/${b.non2xx}; errors ${l.errors}/${b.errors}${extra}`,
    }));
    details[scenario] = { lanyard: l, baseline: b, slices: { lanyard: lSlices.map((r) => round(r.rps)), baseline: bSlices.map((r) => round(r.rps)) } };
    log(`${scenario}: Lanyard ${round(l.rps)} req/s, baseline ${round(b.rps)} req/s (slices: ${lSlices.map((r) => round(r.rps)).join(' ')} / ${bSlices.map((r) => round(r.rps)).join(' ')})`);
  };

  /** A fixed request hammered for a time: warm-ups alternately, then interleaved slices. */
  const timed = async (scenario: string, job: (side: Side, seconds: number) => LoadJob) => {
    for (let warm = 0; warm < warmupRounds; warm += 1) {
      await hammer(job('lanyard', warmupSeconds));
      await hammer(job('baseline', warmupSeconds));
    }
    const [ls, bs] = await interleave(slices, () => hammer(job('lanyard', seconds / slices)), () => hammer(job('baseline', seconds / slices)));
    row(scenario, ls, bs);
  };

  // 1. client_credentials: a service client, client_secret_basic.
  await timed('client_credentials', (side, secs) => ({
    url: s.urls[side], path: '/token', authorization: basic(s.clients.service.id, s.clients.service.secret), connections, seconds: secs, body: 'grant_type=client_credentials',
  }));

  // 2. refresh_token with rotation: every request spends one token from a pool that real
  // authorization code + PKCE flows filled beforehand.
  {
    const signIn = signInsOf(s);
    const pools = {} as Record<Side, string[]>;
    const building = performance.now();
    for (const side of ['lanyard', 'baseline'] as const) pools[side] = await refreshPool(s.urls[side], s.clients.web, signIn[side], warmupPool + POOL);
    log(`refresh_token: ${2 * (warmupPool + POOL)} refresh tokens issued through code + PKCE flows in ${round((performance.now() - building) / 1000, 1)} s`);
    const job = (side: Side, tokens: string[]): LoadJob => ({
      url: s.urls[side], path: '/token', authorization: basic(s.clients.web.id, s.clients.web.secret), connections, amount: tokens.length,
      bodies: tokens.map((token) => `grant_type=refresh_token&refresh_token=${encodeURIComponent(token)}`),
    });
    for (let warm = 0; warm < warmupRounds; warm += 1) {
      await hammer(job('lanyard', pools.lanyard.splice(0, warmupPool / warmupRounds)));
      await hammer(job('baseline', pools.baseline.splice(0, warmupPool / warmupRounds)));
    }
    const parts = { lanyard: slicesOf(pools.lanyard, slices), baseline: slicesOf(pools.baseline, slices) };
    const [ls, bs] = await interleave(slices, (i) => hammer(job('lanyard', parts.lanyard[i]!)), (i) => hammer(job('baseline', parts.baseline[i]!)));
    row('refresh_token', ls, bs);
  }

  // 3 and 4. userinfo and introspection of an access token each server issued to the web client
  // after a login with the openid, email and profile scopes (opaque on both: no resource indicator).
  const tokens = await accessTokens(s, 'openid email profile');
  // Both answer the same thing: userinfo the same claims, introspection an active token (an
  // inactive one is a 200 too, and cheaper: it would flatter whichever side answered it).
  for (const side of ['lanyard', 'baseline'] as const) {
    const me = await fetch(`${s.urls[side]}/me`, { headers: { authorization: `Bearer ${tokens[side]}` } });
    const claims = (await me.json()) as Record<string, unknown>;
    if (me.status !== 200 || claims.email !== s.lanyard.account.email) throw new Error(`userinfo on ${side}: ${me.status} ${JSON.stringify(claims)}`);
    const res = await fetch(`${s.urls[side]}/token/introspection`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(s.clients.web.id, s.clients.web.secret) }, body: `token=${encodeURIComponent(tokens[side])}`,
    });
    const info = (await res.json()) as { active?: boolean };
    if (res.status !== 200 || info.active !== true) throw new Error(`introspection on ${side}: ${res.status} ${JSON.stringify(info)}`);
    log(`${side}: userinfo answers ${Object.keys(claims).sort().join(', ')}`);
  }
  await timed('userinfo', (side, secs) => ({
    url: s.urls[side], path: '/me', method: 'GET', authorization: `Bearer ${tokens[side]}`, connections, seconds: secs,
  }));
  await timed('introspection', (side, secs) => ({
    url: s.urls[side], path: '/token/introspection', authorization: basic(s.clients.web.id, s.clients.web.secret), connections, seconds: secs,
    body: `token=${encodeURIComponent(tokens[side])}&token_type_hint=access_token`,
  }));
  return rows;
}

if (import.meta.main) {
  const { options, done } = standalone();
  try {
    const rows = await run(options);
    printReport(rows);
  } finally {
    await done();
  }
}
