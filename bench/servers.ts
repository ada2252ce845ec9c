import { randomBytes } from 'node:crypto';
import * as argon2 from 'argon2';
import { openDatabase, type Database } from '../src/persistence/db.ts';
import { migrate } from '../src/persistence/migrate.ts';
import type { Argon2Parameters } from '../src/identity/password-hasher.ts';
import { newBenchClients, startLanyard, type BenchClients, type LanyardServer } from './lanyard.ts';
import { startBaseline, type BaselineServer } from './baseline.ts';
import { countingDatabase, type SqlCounts } from './counting-db.ts';
import type { Engine, Log } from './report.ts';

/**
 * Lanyard and bare oidc-provider side by side on one database engine instance — PGlite in
 * memory, or DATABASE_URL with a fresh schema dropped at close — started once per `npm run bench`
 * and shared by the suites that compare the two (tokens, login, overload).
 */
export interface BenchServers {
  db: Database;
  engine: Engine;
  /** "embedded, in memory" or "server (DATABASE_URL, schema …)". */
  where: string;
  lanyard: LanyardServer;
  baseline: BaselineServer;
  urls: Record<'lanyard' | 'baseline', string>;
  clients: BenchClients;
  /** The one account's password, on both servers (the baseline checks it against `baselineHash`). */
  password: string;
  argon2: Argon2Parameters;
  /** Statements and commits each server issued so far (bench/counting-db.ts). */
  counts: Record<'lanyard' | 'baseline', SqlCounts>;
  close(): Promise<void>;
}

/** What every suite gets from bench/run.ts (or from its own CLI entry). */
export interface SuiteOptions {
  log: Log;
  /** Figures beyond the table, written to bench/results/latest.json under the suite's name. */
  details: Record<string, unknown>;
  /** The shared servers, started on first use. */
  servers(): Promise<BenchServers>;
}

/** The settings every suite reads (env), with their defaults (docs/benchmarks.md, "Running it"). */
export const settings = {
  /** Measured seconds per side and scenario. */
  seconds: Number(process.env.BENCH_SECONDS ?? 5),
  warmupSeconds: Number(process.env.BENCH_WARMUP ?? 1),
  /**
   * The login suite's warm-up per side and round (BENCH_LOGIN_WARMUP; default four times
   * BENCH_WARMUP). A second of logins is some forty per side, and most of a login's code runs once
   * per login: V8 had not yet compiled it when the measurement began. With 1 s, Lanyard's event
   * loop took 10.0 ms a login (three runs) against 9.1 with 4 s, and V8's helper threads 2.3
   * against 1.9 (docs/benchmarks.md, seventh session); a server runs for hours.
   */
  loginWarmupSeconds: Number(process.env.BENCH_LOGIN_WARMUP ?? 4 * Number(process.env.BENCH_WARMUP ?? 1)),
  /**
   * Warm-ups run this many times, alternately. Both servers run oidc-provider's (shared) code with
   * objects of different shapes; V8 settles on code good for both only after a few switches. With a
   * single warm-up each, the first measured slice (always Lanyard's) ran up to 20 % slow.
   */
  warmupRounds: 3,
  connections: 16,
  /**
   * The nice value of the browsers' threads (BENCH_LOAD_NICE) in the login and overload suites: in a
   * deployment the browsers are other machines, and their CPU here should not be taken from the
   * server's event loop (decisions 0060, 0068).
   */
  loadNice: Number(process.env.BENCH_LOAD_NICE ?? 10),
  /** Each side's measurement is cut into this many slices, run alternately (see interleave()). */
  slices: 4,
  /** Refresh tokens per server for the measured run (each is spent once: rotation). */
  refreshPool: Number(process.env.BENCH_REFRESH_POOL ?? 3000),
  /** …and for the warm-up before it: a tenth of that, at most 300, at least one per connection in each warm-up round. */
  warmupPool: Math.min(300, Math.max(3 * 16, Math.round(Number(process.env.BENCH_REFRESH_POOL ?? 3000) / 10))),
};

const PASSWORD = 'benchmark passphrase 2026';

export async function startServers(): Promise<BenchServers> {
  const url = process.env.DATABASE_URL || undefined;
  const schema = url ? `lanyard_bench_${randomBytes(4).toString('hex')}` : undefined;
  const db = await openDatabase({ url, schema, poolSize: 20 });
  let lanyard: LanyardServer | undefined;
  let baseline: BaselineServer | undefined;
  const close = async () => {
    await baseline?.close();
    await lanyard?.close();
    if (schema) await db.query(`DROP SCHEMA "${schema}" CASCADE`);
    await db.close();
  };
  try {
    await migrate(db);
    const clients: BenchClients = newBenchClients();
    const counts: Record<'lanyard' | 'baseline', SqlCounts> = { lanyard: { statements: 0, commits: 0 }, baseline: { statements: 0, commits: 0 } };
    lanyard = await startLanyard(countingDatabase(db, counts.lanyard), clients, PASSWORD);
    const params = lanyard.config.argon2;
    // The baseline's login verifies a hash made at Lanyard's parameters: the same cost per check.
    const baselineHash = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: params.memoryKiB, timeCost: params.timeCost, parallelism: params.parallelism });
    baseline = await startBaseline(countingDatabase(db, counts.baseline), clients, {}, { passwordHash: baselineHash });
    return {
      db,
      engine: url ? 'server' : 'embedded',
      where: `${db.engine}${url ? ` server (DATABASE_URL, schema ${schema})` : ' embedded, in memory'}`,
      lanyard,
      baseline,
      urls: { lanyard: lanyard.url, baseline: baseline.url },
      clients,
      password: PASSWORD,
      argon2: params,
      counts,
      close,
    };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

/** Options for a suite run alone (its CLI entry): the servers started once, closed by `done`. */
export function standalone(): { options: SuiteOptions; done(): Promise<void> } {
  let started: Promise<BenchServers> | undefined;
  return {
    options: { log: (line) => process.stdout.write(`${line}\n`), details: {}, servers: () => (started ??= startServers()) },
    async done() {
      if (started) await (await started).close();
    },
  };
}
