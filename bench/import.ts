import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { execFileSync, spawn } from 'node:child_process';
import { openDatabase } from '../src/persistence/db.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { importMembers, type ImportSummary } from '../src/legacy-trello/legacy-import.ts';
import { createTrelloMemberQueries } from '../src/persistence/queries/trello-members.ts';
import { systemClock } from '../src/shared/clock.ts';
import { writeImportFile } from './trello-import-file.ts';
import { startCommand } from './start-command.ts';

/**
 * `npm run bench:import` (docs/data-at-scale.md): the legacy Trello import on a realistic file
 * (bench/trello-import-file.ts), into an empty database and then again over it (the re-import),
 * as `trello import` runs it. Prints lines/s per tenth of the file — flat, or slowing as the
 * tables fill — and the process's peak RSS, with the targets of issue 14. Embedded (a fresh
 * DATA_DIR on disk, as an operator runs it) unless DATABASE_URL names a server (a fresh schema,
 * dropped at the end).
 *
 * BENCH_IMPORT_LINES (default 200000), BENCH_IMPORT_FILE (generated under the temp dir when
 * absent), BENCH_IMPORT_MAX_SECONDS (default 240: a run stops reading there, and says so),
 * BENCH_IMPORT_AGAIN (default 1: the re-import; 0 skips it), BENCH_IMPORT_BATCH (lines per batch;
 * the import's default when absent), BENCH_IMPORT_KEEP=1 (keeps the server schema, to look at plans).
 *
 * `run(options)` gives the rows of `npm run bench` (bench/run.ts's Row). The import is measured in
 * a child process started with the Node options of `npm run cli` (package.json), as an operator
 * runs `trello import`: its heap bound is part of what is measured.
 */
export type { Row } from './report.ts';
import type { Row } from './report.ts';

export interface ImportBenchOptions {
  /** Lines in the generated file (default 200,000). */
  lines?: number;
  /** A server (a fresh schema, dropped at the end); the embedded engine when absent. */
  url?: string | undefined;
  /** The re-import over the first run (default true). */
  again?: boolean;
  /** Bound per pass, in seconds (default 240). */
  maxSeconds?: number;
  batch?: number;
  file?: string;
}

/** Issue 14's targets. */
export const TARGET_RATE = 20_000;
export const TARGET_RSS_MB = 300;
/** Slowest tenth of the file against the fastest: "flat from the first line to the last". */
export const TARGET_FLAT = 0.8;

interface PassResult { label: string; lines: number; seconds: number; tenths: number[]; stoppedEarly: boolean; rssMb: number; cpuUsPerLine: number; inserted: number; updated: number; skipped: number; flagged: number }

/** `npm run cli` as package.json says it (environment defaults and Node options), so that the import runs as the command does. */
function cliCommand(): { env: Record<string, string>; args: string[] } {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
  return startCommand(pkg.scripts.cli!, 'src/cli/main.ts');
}

export async function run(options: ImportBenchOptions = {}): Promise<Row[]> {
  const lines = options.lines ?? 200_000;
  const env: Record<string, string> = { ...process.env as Record<string, string>, BENCH_IMPORT_CHILD: '1', BENCH_IMPORT_LINES: String(lines), BENCH_IMPORT_AGAIN: options.again === false ? '0' : '1', BENCH_IMPORT_MAX_SECONDS: String(options.maxSeconds ?? 240) };
  if (options.url) env.DATABASE_URL = options.url;
  else delete env.DATABASE_URL;
  if (options.batch) env.BENCH_IMPORT_BATCH = String(options.batch);
  if (options.file) env.BENCH_IMPORT_FILE = options.file;
  const cli = cliCommand();
  const flags = [...new Set([...cli.args, '--experimental-strip-types', '--no-warnings'])];
  Object.assign(env, cli.env);
  const child = spawn(process.execPath, [...flags, import.meta.filename], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    const text = d.toString();
    output += text;
    process.stdout.write(text.split('\n').filter((l) => !l.startsWith('RESULT ')).join('\n'));
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const line = output.split('\n').find((l) => l.startsWith('RESULT '));
  if (code !== 0 || !line) throw new Error(`bench/import.ts: the measuring process ended with status ${code}`);
  const { engine, passes, load } = JSON.parse(line.slice(7)) as { engine: string; passes: PassResult[]; load: string };
  const round = (n: number, d = 0) => Math.round(n * 10 ** d) / 10 ** d;
  const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS') as Row['verdict'];
  const rows: Row[] = [];
  const where = `${engine}, ${lines.toLocaleString('en')} lines`;
  const first = passes[0]!;
  for (const p of passes) {
    const rate = p.lines / p.seconds;
    const name = `trello ${p.label} (${where})`;
    const cut = p.stoppedEarly ? ` STOPPED after ${options.maxSeconds ?? 240} s at line ${p.lines}.` : '';
    rows.push({
      scenario: name, unit: 'lines/s', lanyard: round(rate), baseline: TARGET_RATE, ratio: round(rate / TARGET_RATE, 3), target: 1,
      verdict: verdict(rate >= TARGET_RATE && !p.stoppedEarly),
      notes: `target ${TARGET_RATE} lines/s (baseline column = target); ${round(p.cpuUsPerLine)} µs CPU per line (this process${engine === 'postgres' ? ' and its server process' : ''}); load average ${load} on ${availableParallelism()} cores.${p.label === 're-import' ? ` ${round(rate / (first.lines / first.seconds), 2)}× the import's rate.` : ''}${cut}`,
    });
    const slowest = Math.min(...p.tenths);
    const fastest = Math.max(...p.tenths);
    rows.push({
      scenario: `${name}: flatness`, unit: 'slowest / fastest tenth', lanyard: slowest, baseline: fastest, ratio: round(slowest / fastest, 3), target: TARGET_FLAT,
      verdict: verdict(slowest >= TARGET_FLAT * fastest && !p.stoppedEarly),
      notes: `lines/s per tenth of the file: ${p.tenths.join(' ')}`,
    });
  }
  const peak = Math.max(...passes.map((p) => p.rssMb));
  rows.push({
    scenario: `trello import peak RSS (${where})`, unit: 'MB', lanyard: peak, baseline: TARGET_RSS_MB, ratio: round(TARGET_RSS_MB / peak, 3), target: 1,
    verdict: verdict(peak < TARGET_RSS_MB),
    notes: `target < ${TARGET_RSS_MB} MB (baseline column); ratio = target / measured; per pass: ${passes.map((p) => `${p.label} ${p.rssMb} MB`).join(', ')}; ${Object.entries(cli.env).map(([k, v]) => `${k}=${v} `).join('')}Node options ${cli.args.join(' ') || '(none)'} as npm run cli`,
  });
  return rows;
}

if (import.meta.main && !process.env.BENCH_IMPORT_CHILD && !process.env.BENCH_IMPORT_PREPARE) {
  const rows = await run({
    lines: Number(process.env.BENCH_IMPORT_LINES ?? 200_000),
    url: process.env.DATABASE_URL || undefined,
    again: process.env.BENCH_IMPORT_AGAIN !== '0',
    maxSeconds: Number(process.env.BENCH_IMPORT_MAX_SECONDS ?? 240),
    ...(process.env.BENCH_IMPORT_BATCH ? { batch: Number(process.env.BENCH_IMPORT_BATCH) } : {}),
    ...(process.env.BENCH_IMPORT_FILE ? { file: process.env.BENCH_IMPORT_FILE } : {}),
  });
  process.stdout.write('\n| scenario | unit | Lanyard | target / baseline | ratio | target ratio | verdict | notes |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n');
  for (const r of rows) process.stdout.write(`| ${r.scenario} | ${r.unit} | ${r.lanyard} | ${r.baseline} | ${r.ratio} | ${r.target === null ? '—' : `≥ ${r.target}`} | ${r.verdict} | ${r.notes} |\n`);
}

/** The measuring process (or, with BENCH_IMPORT_PREPARE, the one that makes the embedded engine's files). */
if (process.env.BENCH_IMPORT_CHILD || process.env.BENCH_IMPORT_PREPARE) {
  const LINES = Number(process.env.BENCH_IMPORT_LINES ?? 200_000);
  const FILE = process.env.BENCH_IMPORT_FILE ?? join(tmpdir(), `lanyard-bench-import-${LINES}.jsonl`);
  const MAX_SECONDS = Number(process.env.BENCH_IMPORT_MAX_SECONDS ?? 240);
  const AGAIN = process.env.BENCH_IMPORT_AGAIN !== '0';
  const BATCH = process.env.BENCH_IMPORT_BATCH ? Number(process.env.BENCH_IMPORT_BATCH) : undefined;
  const url = process.env.DATABASE_URL || undefined;

  const mb = (bytes: number) => Math.round(bytes / 1048576);
  let peakRss = 0;
  const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage.rss()); }, 200);

  // The embedded engine's files are made (initdb, migrations) by another process, as the server
  // makes them before an operator runs `trello import` on its DATA_DIR: initdb's own memory is not
  // the import's.
  if (process.env.BENCH_IMPORT_PREPARE) {
    const prepared = await openDatabase({ dataDir: process.env.BENCH_IMPORT_PREPARE });
    await migrate(prepared);
    await prepared.close();
    process.exit(0);
  }

  if (!existsSync(FILE)) {
    process.stdout.write(`generating ${LINES} lines into ${FILE} …\n`);
    await writeImportFile(FILE, LINES);
  }
  const size = statSync(FILE).size;
  const schema = url ? `lanyard_bench_import_${randomBytes(4).toString('hex')}` : undefined;
  const dataDir = url ? undefined : mkdtempSync(join(tmpdir(), 'lanyard-bench-import-'));
  if (dataDir) execFileSync(process.execPath, [...process.execArgv, import.meta.filename], { env: { ...process.env, BENCH_IMPORT_PREPARE: dataDir }, stdio: 'inherit' });
  // One connection: the import uses one at a time, and its server process's CPU can be read.
  const db = await openDatabase({ url, schema, dataDir, poolSize: 1, timeouts: { connectMs: 10_000, statementMs: 120_000, idleInTransactionMs: 120_000 } });

  interface Run { summary: ImportSummary; seconds: number; tenths: number[]; stoppedEarly: boolean; rssMb: number; cpuUs: number }

  /**
   * CPU time spent for the import, in microseconds: this process's, plus the server process's
   * serving its connection when the server is on this machine (/proc). On a shared machine the
   * wall-clock rate depends on the neighbours; the CPU time per line much less.
   */
  let serverCpuUs = 0;
  async function cpuNow(): Promise<number> {
    const own = process.cpuUsage();
    let server = 0;
    if (url) {
      const pid = (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      try {
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        server = ((Number(fields[11]) + Number(fields[12])) / 100) * 1e6; // utime + stime, in clock ticks of 1/100 s
      } catch { /* the server is elsewhere: its share is not counted */ }
    }
    serverCpuUs = server;
    return own.user + own.system + server;
  }

  async function pass(label: string): Promise<Run> {
    peakRss = process.memoryUsage.rss();
    // Through a PassThrough, so that a run stopped at BENCH_IMPORT_MAX_SECONDS ends its input
    // cleanly (the line cut there is reported as a skipped line).
    const source = createReadStream(FILE);
    const input = source.pipe(new PassThrough());
    const cpuStart = await cpuNow();
    const serverStart = serverCpuUs;
    const start = performance.now();
    const tenths: number[] = [];
    let mark = { lines: 0, at: start };
    let stoppedEarly = false;
    const total = LINES;
    const summary = await importMembers({ db, trelloMembers: createTrelloMemberQueries(db), clock: systemClock }, input, {
      ...(BATCH ? { batchSize: BATCH } : {}),
      onProgress: (n) => {
        const now = performance.now();
        // Lines/s over each tenth of the file, from the lines read at the batch boundaries.
        while (n - mark.lines >= total / 10 || (n >= total && n > mark.lines)) {
          tenths.push(Math.round(((n - mark.lines) / (now - mark.at)) * 1000));
          mark = { lines: n, at: now };
          if (n >= total) break;
        }
        if ((now - start) / 1000 > MAX_SECONDS && !stoppedEarly) {
          stoppedEarly = true;
          source.unpipe(input);
          source.destroy();
          input.end();
        }
      },
    });
    const seconds = (performance.now() - start) / 1000;
    const cpuUs = (await cpuNow()) - cpuStart;
    const serverUs = serverCpuUs - serverStart;
    const result = { summary, seconds, tenths, stoppedEarly, rssMb: mb(Math.max(peakRss, process.memoryUsage.rss())), cpuUs };
    const s = result.summary;
    process.stdout.write(`${label}: ${s.lines} lines in ${seconds.toFixed(1)} s = ${Math.round(s.lines / seconds)} lines/s; ${s.inserted} new, ${s.updated} updated, ${s.skippedCount} skipped, ${s.flaggedCount} flagged${stoppedEarly ? ` (STOPPED after ${MAX_SECONDS} s)` : ''}\n`);
    const m = process.memoryUsage();
    process.stdout.write(`  memory at the end: RSS ${mb(m.rss)} MB = JS heap ${mb(m.heapTotal)} MB + array buffers ${mb(m.arrayBuffers)} MB (the embedded engine's WebAssembly memory among them) + code and the rest\n`);
    process.stdout.write(`  lines/s per tenth of the file: ${tenths.join(' ')}\n  peak RSS ${result.rssMb} MB; CPU ${(cpuUs / 1e6).toFixed(1)} s (${(cpuUs / s.lines).toFixed(0)} µs per line${url ? `, of which the server process ${(serverUs / s.lines).toFixed(0)}` : ''})\n`);
    return result;
  }

  try {
    await migrate(db);
    process.stdout.write(`RSS with the database open: ${mb(process.memoryUsage.rss())} MB\n`);
    process.stdout.write(`engine ${db.engine}${url ? ` (${new URL(url).host})` : ` (DATA_DIR ${dataDir})`}, file ${LINES} lines, ${mb(size)} MB, node ${process.version}\n`);
    const runs = [await pass('import')];
    if (AGAIN) runs.push(await pass('re-import'));
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const passes: PassResult[] = runs.map((r, i) => ({
      label: i ? 're-import' : 'import', lines: r.summary.lines, seconds: r.seconds, tenths: r.tenths, stoppedEarly: r.stoppedEarly, rssMb: r.rssMb,
      cpuUsPerLine: r.cpuUs / r.summary.lines, inserted: r.summary.inserted, updated: r.summary.updated, skipped: r.summary.skippedCount, flagged: r.summary.flaggedCount,
    }));
    process.stdout.write(`\nmachine: ${availableParallelism()} cores, load average at the end ${load}${Number(load.split(' ')[0]) > availableParallelism() ? ' (BUSY: other processes took CPU; compare the CPU per line)' : ''}\n`);
    process.stdout.write(`RESULT ${JSON.stringify({ engine: db.engine, passes, load })}\n`);
  } finally {
    clearInterval(sampler);
    if (schema && process.env.BENCH_IMPORT_KEEP === '1') process.stdout.write(`kept schema ${schema} (BENCH_IMPORT_KEEP=1): drop it when done\n`);
    else if (schema) await db.query(`DROP SCHEMA "${schema}" CASCADE`).catch(() => {});
    await db.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}
