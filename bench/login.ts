/**
 * The password login suite of `npm run bench` (BENCH_SUITES=login): full browser logins on
 * Lanyard against bare oidc-provider checking the same argon2id hash in its interaction route
 * (target ≥ 0.90), against the raw argon2id limit (reported), and the SQL statements and commits
 * per login (targets ≤ 10 and ≤ 3).
 *
 *   node --experimental-strip-types bench/login.ts     (this suite alone)
 */
import { argon2Verify, baselinePasswordPage, combineLoops, loop, passwordLogin, passwordPages, rotate, type LoopResult } from './scenarios.ts';
import { printReport, ratioRow, round, shownRatio, type Row } from './report.ts';
import { settings, standalone, type SuiteOptions } from './servers.ts';

const LOGIN_WORKERS = 4;

export async function run(options: SuiteOptions): Promise<Row[]> {
  const s = await options.servers();
  const { log, details } = options;
  const { warmupSeconds, warmupRounds, slices } = settings;
  /** Login loops run a little longer: a few dozen logins per second need time to average out. */
  const seconds = settings.seconds + 1;
  const verify = await argon2Verify(s.argon2, s.password);
  const trips = { lanyard: { count: 0 }, baseline: { count: 0 } };
  const signIns = { lanyard: passwordPages(s.lanyard.account.email, s.password), baseline: baselinePasswordPage(s.lanyard.account.email, s.password) };
  const login = (name: 'lanyard' | 'baseline') => passwordLogin(s.urls[name], s.clients.web, signIns[name], trips[name]);
  /** A login loop with the SQL its server issued and the requests its browser made, per login. */
  const measured = async (name: 'lanyard' | 'baseline', secs: number) => {
    const before = { ...s.counts[name], trips: trips[name].count };
    const result = await loop(LOGIN_WORKERS, secs, login(name));
    return { result, statements: s.counts[name].statements - before.statements, commits: s.counts[name].commits - before.commits, trips: trips[name].count - before.trips };
  };
  for (let warm = 0; warm < warmupRounds; warm += 1) {
    await measured('lanyard', warmupSeconds);
    await measured('baseline', warmupSeconds);
  }
  await loop(LOGIN_WORKERS, warmupSeconds, verify);
  type Measured = Awaited<ReturnType<typeof measured>>;
  const [ls, bs, as] = (await rotate<Measured | LoopResult>(slices, [
    () => measured('lanyard', seconds / slices),
    () => measured('baseline', seconds / slices),
    () => loop(LOGIN_WORKERS, seconds / slices, verify),
  ])) as [Measured[], Measured[], LoopResult[]];
  const perLogin = (runs: Measured[]) => {
    const result = combineLoops(runs.map((r) => r.result));
    // Logins still running when a slice's time was up count in the next slice: per login, the
    // sums over all slices are close enough (a few dozen logins each).
    const per = (pick: (r: Measured) => number) => runs.reduce((sum, r) => sum + pick(r), 0) / Math.max(1, result.done);
    return { result, statements: per((r) => r.statements), commits: per((r) => r.commits), trips: per((r) => r.trips) };
  };
  const logins = perLogin(ls);
  const base = perLogin(bs);
  const limit = combineLoops(as);
  const describe = (r: LoopResult) => `${round(r.cpuMsPerOp, 1)} ms CPU (main thread, no hashing: ${round(r.mainCpuMsPerOp, 1)})`;
  const anatomy = (m: ReturnType<typeof perLogin>) => `${round(m.trips, 1)} HTTP requests, ${round(m.statements, 1)} SQL statements, ${round(m.commits, 1)} commits`;
  const rows: Row[] = [
    ratioRow({
      scenario: 'password login', unit: 'logins/s', lanyard: round(logins.result.perSecond, 1), baseline: round(base.result.perSecond, 1), target: 0.9,
      notes: `${LOGIN_WORKERS} workers; per login Lanyard/baseline: ${describe(logins.result)} / ${describe(base.result)}; failed ${logins.result.failed}/${base.result.failed}`,
    }),
    ratioRow({
      scenario: 'password login vs argon2', unit: 'logins/s vs argon2id/s', lanyard: round(logins.result.perSecond, 1), baseline: round(limit.perSecond, 1), target: null,
      notes: `argon2id alone ${describe(limit)}; baseline's logins at ${shownRatio(base.result.perSecond / limit.perSecond)}× of it`,
    }),
    {
      // Statements (Lanyard, baseline), and Lanyard's commits in the ratio column.
      scenario: 'password login, per login', unit: 'statements L / B', kind: 'counts', targetText: '≤ 10 / ≤ 3',
      lanyard: round(logins.statements, 1), baseline: round(base.statements, 1), ratio: round(logins.commits, 1), target: null,
      verdict: logins.statements <= 10 && logins.commits <= 3 ? 'PASS' : 'MISS',
      // The floor of commits is 4 (decision 0050): the interaction stored at GET /auth, the throttle's
      // reservation committed before the hash check, the success, the resume's session and code.
      notes: `GET /auth … code (Lanyard: GET /auth, GET and POST identify, POST password, GET /auth/:uid; baseline: GET /auth, GET /interaction, POST login, GET /auth/:uid). Lanyard ${anatomy(logins)}; baseline ${anatomy(base)} (targets ≤ 10 statements, ≤ 3 commits; ratio column: Lanyard's commits; commits cannot go below 4 without weakening throttling — the engine's 3 plus the reservation committed before the hash, decision 0050; main thread includes the in-process browser)`,
    },
  ];
  details['password login'] = {
    logins, baseline: base, argon2: limit, argon2Params: s.argon2,
    slices: { logins: ls.map((r) => round(r.result.perSecond, 1)), baseline: bs.map((r) => round(r.result.perSecond, 1)), argon2: as.map((r) => round(r.perSecond, 1)) },
  };
  log(`password login: ${round(logins.result.perSecond, 1)} logins/s, baseline ${round(base.result.perSecond, 1)} logins/s, argon2id limit ${round(limit.perSecond, 1)} verifications/s (slices: ${ls.map((r) => round(r.result.perSecond)).join(' ')} / ${bs.map((r) => round(r.result.perSecond)).join(' ')} / ${as.map((r) => round(r.perSecond)).join(' ')})`);
  log(`per password login: Lanyard ${anatomy(logins)}; baseline ${anatomy(base)}`);
  return rows;
}

if (import.meta.main) {
  const { options, done } = standalone();
  try {
    printReport(await run(options));
  } finally {
    await done();
  }
}
