/**
 * The password login suite of `npm run bench` (BENCH_SUITES=login): full browser logins on
 * Lanyard against bare oidc-provider checking the same argon2id hash in its interaction route
 * (target ≥ 0.90), against the raw argon2id limit (reported), and the SQL statements and commits
 * per login (targets ≤ 10 and ≤ 3).
 *
 *   node --experimental-strip-types bench/login.ts     (this suite alone)
 */
import { argon2Verify, combineLoops, loop, machineBusyMs, rotate, startBrowsers, threadCpuByKind, threadCpuSince, type LoopResult, type ThreadKind } from './scenarios.ts';
import { printReport, ratioRow, round, shownRatio, type Row } from './report.ts';
import { settings, standalone, type SuiteOptions } from './servers.ts';

const LOGIN_WORKERS = 4;

export async function run(options: SuiteOptions): Promise<Row[]> {
  const s = await options.servers();
  const { log, details } = options;
  const { loginWarmupSeconds: warmupSeconds, warmupRounds, slices } = settings;
  /** Login loops run a little longer: a few dozen logins per second need time to average out. */
  const seconds = settings.seconds + 1;
  const verify = await argon2Verify(s.argon2, s.password);
  const browsers = await startBrowsers({ urls: s.urls, client: s.clients.web, email: s.lanyard.account.email, password: s.password, nice: settings.loadNice });
  try {
    return await measure();
  } finally {
    await browsers.close();
  }

  async function measure(): Promise<Row[]> {
    /**
     * A login loop in the browsers' thread, with the SQL its server issued and the requests its
     * browsers made, per login. The CPU figures are the servers': the process's time less the
     * browsers' thread, and the main thread's (the event loop both servers run on).
     */
    const measured = async (name: 'lanyard' | 'baseline', secs: number) => {
      const before = { ...s.counts[name] };
      const machine = machineBusyMs();
      const cpu = process.cpuUsage();
      const mainCpu = process.threadCpuUsage();
      const threads = threadCpuByKind();
      const answer = await browsers.run({ side: name, workers: LOGIN_WORKERS, seconds: secs });
      const used = process.cpuUsage(cpu);
      const usedMain = process.threadCpuUsage(mainCpu);
      const byThread = threadCpuSince(threads);
      // Everything else the machine did meanwhile: the database server's work for these logins
      // (on the embedded engine it runs in the process, and this is near zero) and any stray load.
      const othersMs = machine === undefined ? Number.NaN : machineBusyMs()! - machine - (used.user + used.system) / 1000;
      const { done } = answer.result;
      const serverCpuMs = (used.user + used.system) / 1000 - answer.generatorCpuMs;
      const result: LoopResult = {
        ...answer.result,
        cpuMs: serverCpuMs,
        cpuMsPerOp: done ? serverCpuMs / done : 0,
        mainCpuMsPerOp: done ? (usedMain.user + usedMain.system) / 1000 / done : 0,
      };
      return { result, statements: s.counts[name].statements - before.statements, commits: s.counts[name].commits - before.commits, trips: answer.trips, generatorCpuMs: answer.generatorCpuMs, othersMs, byThread };
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
      // The process's CPU per login by thread (/proc, 10 ms ticks summed over the slices): where a
      // login's cost lands — the event loop, V8's collector and compiler threads, the thread pool
      // (argon2), the browsers' thread. Undefined where /proc is not there.
      const byThread = runs.every((r) => r.byThread)
        ? Object.fromEntries((['main', 'v8', 'pool', 'workers', 'other'] as ThreadKind[]).map((kind) => [kind, per((r) => r.byThread![kind])])) as Record<ThreadKind, number>
        : undefined;
      return { result, statements: per((r) => r.statements), commits: per((r) => r.commits), trips: per((r) => r.trips), browserCpuMs: per((r) => r.generatorCpuMs), othersCpuMs: per((r) => r.othersMs), byThread };
    };
    const logins = perLogin(ls);
    const base = perLogin(bs);
    const limit = combineLoops(as);
    const describe = (r: LoopResult) => `${round(r.cpuMsPerOp, 1)} ms CPU (main thread, no hashing: ${round(r.mainCpuMsPerOp, 1)})`;
    const threadsOf = (m: ReturnType<typeof perLogin>) => m.byThread
      ? `event loop ${round(m.byThread.main, 1)}, V8's threads (collector, compiler) ${round(m.byThread.v8, 1)}, thread pool (argon2) ${round(m.byThread.pool, 1)}, worker threads (the browsers) ${round(m.byThread.workers, 1)}`
      : 'not available here';
    const anatomy = (m: ReturnType<typeof perLogin>) => `${round(m.trips, 1)} HTTP requests, ${round(m.statements, 1)} SQL statements, ${round(m.commits, 1)} commits`;
    const rows: Row[] = [
      ratioRow({
        scenario: 'password login', unit: 'logins/s', lanyard: round(logins.result.perSecond, 1), baseline: round(base.result.perSecond, 1), target: 0.9,
        notes: `${LOGIN_WORKERS} browsers in a worker thread at nice ${settings.loadNice} (decision 0068); per login, servers' CPU Lanyard/baseline: ${describe(logins.result)} / ${describe(base.result)}; the browsers' ${round(logins.browserCpuMs, 1)} / ${round(base.browserCpuMs, 1)} ms; other processes (the database server) ${round(logins.othersCpuMs, 1)} / ${round(base.othersCpuMs, 1)} ms; failed ${logins.result.failed}/${base.result.failed}; the process's CPU per login by thread, ms, Lanyard: ${threadsOf(logins)}; baseline: ${threadsOf(base)}`,
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
        // 3 commits (decisions 0050, 0079): the interaction stored at GET /auth, the throttle's
        // reservation committed before the hash check, and the success with the resume's session
        // and code (the password form runs the engine's resume itself).
        notes: `GET /auth … code (Lanyard: GET /auth, GET and POST identify, GET password, POST password with the engine's resume in it; baseline: GET /auth, GET /interaction, POST login, GET /auth/:uid). Lanyard ${anatomy(logins)}; baseline ${anatomy(base)} (targets ≤ 10 statements, ≤ 3 commits; ratio column: Lanyard's commits; the reservation is committed before the hash, decision 0050, and the success with the resume, decision 0079; the browsers run in a thread of their own, decision 0068)`,
      },
    ];
    details['password login'] = {
      logins, baseline: base, argon2: limit, argon2Params: s.argon2,
      slices: { logins: ls.map((r) => round(r.result.perSecond, 1)), baseline: bs.map((r) => round(r.result.perSecond, 1)), argon2: as.map((r) => round(r.perSecond, 1)) },
    };
    log(`password login: ${round(logins.result.perSecond, 1)} logins/s, baseline ${round(base.result.perSecond, 1)} logins/s, argon2id limit ${round(limit.perSecond, 1)} verifications/s (slices: ${ls.map((r) => round(r.result.perSecond)).join(' ')} / ${bs.map((r) => round(r.result.perSecond)).join(' ')} / ${as.map((r) => round(r.perSecond)).join(' ')})`);
    log(`per password login: Lanyard ${anatomy(logins)}; baseline ${anatomy(base)}`);
    log(`CPU per password login by thread, ms: Lanyard ${threadsOf(logins)}; baseline ${threadsOf(base)}`);
    return rows;
  }
}

if (import.meta.main) {
  const { options, done } = standalone();
  try {
    printReport(await run(options));
  } finally {
    await done();
  }
}
