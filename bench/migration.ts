import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { openDatabase, type Database } from '../src/persistence/db.ts';
import { loadConfig } from '../src/config/load.ts';
import { createRegistry, type Registry } from '../src/registry.ts';
import { createLogger } from '../src/shared/logger.ts';
import { importMembers } from '../src/legacy-trello/legacy-import.ts';
import type { BatchWrite, BulkSummary } from '../src/legacy-trello/bulk-migration.ts';
import { importLines } from './trello-import-file.ts';

/**
 * The bulk migration of legacy Trello members (`trello migrate`, docs/data-at-scale.md) on a
 * generated population (bench/trello-import-file.ts: 60 % one address, 30 % two, 10 % three to
 * five, 90 % verified, 20 % Google, 10 % Enterprise, shared and claimed addresses): imported
 * first (not timed), then the dry run and the run, timed. Members/s overall and per tenth of the
 * run (flat, or slowing as the tables fill). Target of issue 14: ≥ 2,000 members/s on the server.
 *
 * `run(options)` gives the rows of `npm run bench`; alone: `node --experimental-strip-types
 * bench/migration.ts`. Embedded (a fresh DATA_DIR) unless DATABASE_URL names a server (a fresh
 * schema, dropped at the end).
 *
 * BENCH_MIGRATION_MEMBERS (default 50000), BENCH_MIGRATION_BATCH (the run's default when
 * absent), BENCH_MIGRATION_MAX_SECONDS (default 300: the run stops after the batch that passes
 * it, as an interrupted run would, and says so), BENCH_MIGRATION_PER_MEMBER=1 (each member in its
 * own transaction, as before batches were written at once: the "before" figure).
 */
export type { Row } from './report.ts';
import type { Row } from './report.ts';

export interface MigrationOptions {
  members?: number;
  batchSize?: number;
  maxSeconds?: number;
  perMember?: boolean;
  databaseUrl?: string | undefined;
  log?: (line: string) => void;
}

export const TARGET_MEMBERS_PER_SECOND = 2_000;

class Stop extends Error {}

const POOL = 3;

/**
 * CPU seconds of the server processes serving `db`'s connections, when they run on this machine:
 * one query on each connection of the pool at once names them all.
 */
async function serverCpuSeconds(db: Database): Promise<number | undefined> {
  const pids = await Promise.all(Array.from({ length: POOL }, async () => (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_sleep(0.05)')).rows[0]!.pid));
  try {
    return [...new Set(pids)].reduce((sum, pid) => {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return sum + (Number(fields[11]) + Number(fields[12])) / 100;
    }, 0);
  } catch {
    return undefined;
  }
}

export async function run(options: MigrationOptions = {}): Promise<Row[]> {
  const members = options.members ?? Number(process.env.BENCH_MIGRATION_MEMBERS ?? 50_000);
  const batchSize = options.batchSize ?? (process.env.BENCH_MIGRATION_BATCH ? Number(process.env.BENCH_MIGRATION_BATCH) : undefined);
  const maxSeconds = options.maxSeconds ?? Number(process.env.BENCH_MIGRATION_MAX_SECONDS ?? 300);
  const perMember = options.perMember ?? process.env.BENCH_MIGRATION_PER_MEMBER === '1';
  const url = 'databaseUrl' in options ? options.databaseUrl : process.env.DATABASE_URL || undefined;
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const engine = url ? 'server' : 'embedded';

  const schema = url ? `lanyard_bench_migration_${randomBytes(4).toString('hex')}` : undefined;
  const dataDir = url ? undefined : mkdtempSync(join(tmpdir(), 'lanyard-bench-migration-'));
  // A small pool: the run writes a batch on one connection while it plans the next on another.
  const db = await openDatabase({ url, schema, dataDir, poolSize: POOL, timeouts: { connectMs: 10_000, statementMs: 120_000, idleInTransactionMs: 120_000 } });
  let registry: Registry | undefined;
  try {
    const config = loadConfig({ NODE_ENV: 'test', ISSUER: 'https://id.example.test', SECRET_KEY: randomBytes(32).toString('base64url') }, { overrides: { dataDir: dataDir ?? tmpdir() } });
    registry = await createRegistry(config, { logger: createLogger('silent'), db });

    log(`migration bench (${engine}): importing ${members} generated members …`);
    const started = Date.now();
    const lines = (function* () { for (const line of importLines(members)) yield `${line}\n`; })();
    const imported = await importMembers({ db, trelloMembers: registry.trello.members, clock: registry.clock }, Readable.from(lines));
    const unlinked = await registry.trello.bulk.remaining();
    log(`imported ${imported.inserted} members in ${((Date.now() - started) / 1000).toFixed(0)} s; ${unlinked} unlinked`);

    // The dry run: the planner alone, reading every batch.
    const dryStart = performance.now();
    const dry = await registry.trello.bulk.run({ dryRun: true, ...(batchSize ? { batchSize } : {}) });
    const drySeconds = (performance.now() - dryStart) / 1000;
    const dryRate = dry.examined / drySeconds;
    log(`dry run: ${dry.examined} examined in ${drySeconds.toFixed(1)} s: ${Math.round(dryRate)} members/s (${dry.linked} would be linked, ${dry.conflicts} conflicts)`);

    // The run, with a mark after each batch for the per-tenth rates.
    const marks: { at: number; examined: number }[] = [];
    const writes: BatchWrite[] = [];
    let summary: BulkSummary = { examined: 0, linked: 0, conflicts: 0 };
    let stopped = false;
    const cpuBefore = process.cpuUsage();
    const serverBefore = url ? await serverCpuSeconds(db) : undefined;
    const runStart = performance.now();
    try {
      summary = await registry.trello.bulk.run({
        dryRun: false,
        perMember,
        ...(batchSize ? { batchSize } : {}),
        onWrite: (w) => writes.push(w),
        onBatch: (s) => {
          summary = { ...s };
          marks.push({ at: performance.now(), examined: s.examined });
          if ((performance.now() - runStart) / 1000 > maxSeconds) throw new Stop();
        },
      });
    } catch (err) {
      if (!(err instanceof Stop)) throw err;
      stopped = true;
    }
    const seconds = (performance.now() - runStart) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const serverAfter = url ? await serverCpuSeconds(db) : undefined;
    const rate = summary.examined / seconds;

    // Tenths of the members examined, each with its own rate.
    const tenths: number[] = [];
    let from = { at: runStart, examined: 0 };
    for (const mark of marks) {
      if (mark.examined - from.examined >= Math.max(1, summary.examined / 10) || mark === marks.at(-1)) {
        tenths.push(Math.round((mark.examined - from.examined) / ((mark.at - from.at) / 1000)));
        from = mark;
      }
    }
    const together = writes.reduce((n, w) => n + w.together, 0);
    const alone = writes.reduce((n, w) => n + w.alone, 0);
    const retried = writes.filter((w) => w.retried).length;
    // What the run left must be what it reported: its conflicts, still unlinked; one mail per link.
    const left = await registry.trello.bulk.remaining();
    const mails = (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM mail_outbox WHERE template = 'trello-migrated'")).rows[0]!.n;
    const consistent = stopped || (left === summary.conflicts && mails === summary.linked && summary.linked === dry.linked && summary.conflicts === dry.conflicts);
    const clientUs = ((cpu.user + cpu.system) / Math.max(1, summary.examined)).toFixed(0);
    const serverUs = serverBefore !== undefined && serverAfter !== undefined ? ((serverAfter - serverBefore) * 1e6 / Math.max(1, summary.examined)).toFixed(0) : undefined;
    log(`run${perMember ? ' (member by member)' : ''}: ${summary.examined} examined in ${seconds.toFixed(1)} s: ${Math.round(rate)} members/s; ${summary.linked} linked (${together} in batches, ${alone} alone, ${retried} batches retried member by member), ${summary.conflicts} conflicts${stopped ? `; stopped after ${maxSeconds} s` : ''}`);
    log(`per tenth (members/s): ${tenths.join(' → ')}`);
    log(`CPU per member: ${clientUs} µs here${serverUs ? `, ${serverUs} µs in the server processes` : ''}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    if (!consistent) log(`INCONSISTENT: ${left} left unlinked, ${mails} mails queued, dry run predicted ${dry.linked} links and ${dry.conflicts} conflicts`);

    const load = `load ${loadavg()[0]!.toFixed(1)} on 2 cores`;
    const scenario = `trello migrate (${engine}${perMember ? ', member by member' : ''}), ${summary.examined.toLocaleString('en')} members`;
    const target = engine === 'server' ? TARGET_MEMBERS_PER_SECOND : null;
    return [
      {
        scenario,
        unit: 'members/s',
        lanyard: Math.round(rate),
        baseline: TARGET_MEMBERS_PER_SECOND,
        ratio: Number((rate / TARGET_MEMBERS_PER_SECOND).toFixed(2)),
        target,
        verdict: !consistent ? 'MISS' : target === null ? '—' : rate >= target ? 'PASS' : 'MISS',
        notes: `baseline column = issue 14's target (≥ ${TARGET_MEMBERS_PER_SECOND} members/s on the server; embedded reported without a target); per tenth ${tenths.join('→')}; ${summary.linked} linked (${alone} alone, ${retried} batches retried), ${summary.conflicts} conflicts; CPU/member ${clientUs} µs${serverUs ? ` + server ${serverUs} µs` : ''}; ${load}${stopped ? `; stopped after ${maxSeconds} s` : ''}${consistent ? '' : '; INCONSISTENT with its summary'}`,
      },
      {
        scenario: `trello migrate --dry-run (${engine}), ${dry.examined.toLocaleString('en')} members`,
        unit: 'members/s',
        lanyard: Math.round(dryRate),
        baseline: TARGET_MEMBERS_PER_SECOND,
        ratio: Number((dryRate / TARGET_MEMBERS_PER_SECOND).toFixed(2)),
        target: null,
        verdict: '—',
        notes: `the planner alone (reads, address lookups, decision point), no target; baseline column = the run's target for scale; ${load}`,
      },
    ];
  } finally {
    await registry?.close();
    if (schema) await db.query(`DROP SCHEMA "${schema}" CASCADE`).catch(() => {});
    await db.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const rows = await run();
  for (const row of rows) process.stdout.write(`${row.verdict.padEnd(4)} ${row.scenario}: ${row.lanyard} ${row.unit} (target ${row.target ?? '—'}) — ${row.notes}\n`);
}
