import type { Database } from './db.ts';
import type { Logger } from '../shared/logger.ts';

/**
 * The embedded engine's autovacuum (decision 0064). PGlite is PostgreSQL in one process with one
 * connection and no background workers: nothing ever runs VACUUM or ANALYZE on its own. Without
 * statistics, the plans its named statements cache (decision 0062) are the plans of the tables as
 * they were when first used — nearly empty — and stay so: the statement that stores a refresh's
 * writes went from 0.8 to 2.4 ms as oidc_payloads grew to 4,500 rows, and back to 0.95 ms after
 * one ANALYZE (which invalidates the cached plans). Without VACUUM, every update and delete leaves
 * a dead row and its index entries for good.
 *
 * So the sweeper, on the embedded engine only, does what autovacuum does on a server, with its
 * default thresholds (PostgreSQL docs, "The Autovacuum Daemon", 24.1.6), on a smaller sample
 * (`SAMPLE_TARGET`): a table is vacuumed (and analysed) when its dead rows pass 50 + 20 % of its rows, or its rows inserted since the
 * last vacuum pass 1,000 + 20 % (so that its pages are marked all-visible), and analysed when the
 * rows changed since the last ANALYZE pass 50 + 10 %. The counts are the engine's own statistics
 * (`pg_stat_user_tables`), kept by PGlite as by a server.
 */
export interface TableActivity {
  table: string;
  /** Live rows (the engine's estimate). */
  live: number;
  dead: number;
  modifiedSinceAnalyze: number;
  insertedSinceVacuum: number;
}

/** autovacuum's defaults (autovacuum_vacuum_threshold, _scale_factor, _insert_threshold, _insert_scale_factor, autovacuum_analyze_threshold, _scale_factor). */
const VACUUM = { threshold: 50, scale: 0.2 };
const VACUUM_INSERTS = { threshold: 1000, scale: 0.2 };
const ANALYZE = { threshold: 50, scale: 0.1 };

/** What a table is due for, by autovacuum's rules; undefined when nothing. VACUUM (ANALYZE) covers both. */
export function upkeepDue(t: TableActivity): 'vacuum' | 'analyze' | undefined {
  if (t.dead > VACUUM.threshold + VACUUM.scale * t.live) return 'vacuum';
  if (t.insertedSinceVacuum > VACUUM_INSERTS.threshold + VACUUM_INSERTS.scale * t.live) return 'vacuum';
  if (t.modifiedSinceAnalyze > ANALYZE.threshold + ANALYZE.scale * t.live) return 'analyze';
  return undefined;
}

const quoted = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * The sample an ANALYZE of the upkeep reads: 10 × 300 = 3,000 rows (`default_statistics_target`
 * 10, against PostgreSQL's 100 and 30,000 rows). Its lookups are index probes whose plans need the
 * tables' sizes and the few values of columns such as `model`, not fine histograms; a full
 * ANALYZE of a 12,000-token oidc_payloads held the one connection for 214–350 ms, the sampled one
 * 18–49 ms (decision 0064).
 */
const SAMPLE_TARGET = 10;

/**
 * One round: reads the statistics of the tables in the current schema and vacuums or analyses
 * those due, one statement each (PGlite's one connection is held for each: a few milliseconds on
 * the tables of a small deployment). Returns what it did.
 */
export async function embeddedUpkeep(db: Database): Promise<{ vacuumed: string[]; analyzed: string[] }> {
  // The counts the backend has not reported yet (it reports at most once a second, when idle):
  // a command's last writes, just before its upkeep, would otherwise go unseen.
  await db.query('SELECT pg_stat_force_next_flush()');
  const { rows } = await db.query<{ table: string; live: string; dead: string; modified: string; inserted: string }>(
    `SELECT relname AS table, n_live_tup AS live, n_dead_tup AS dead, n_mod_since_analyze AS modified, n_ins_since_vacuum AS inserted
     FROM pg_stat_user_tables WHERE schemaname = current_schema() ORDER BY relname`,
  );
  const done = { vacuumed: [] as string[], analyzed: [] as string[] };
  const analyze = (table: string) => db.transaction(async (tx) => {
    await tx.query(`SET LOCAL default_statistics_target = ${SAMPLE_TARGET}`);
    await tx.query(`ANALYZE ${quoted(table)}`);
  });
  for (const r of rows) {
    const due = upkeepDue({ table: r.table, live: Number(r.live), dead: Number(r.dead), modifiedSinceAnalyze: Number(r.modified), insertedSinceVacuum: Number(r.inserted) });
    if (!due) continue;
    if (due === 'vacuum') {
      // VACUUM cannot run inside a transaction: `exec`, outside any. Then the sampled ANALYZE,
      // which can (it is what VACUUM (ANALYZE) would do, with PostgreSQL's full sample).
      await db.exec(`VACUUM ${quoted(r.table)}`);
      done.vacuumed.push(r.table);
    } else {
      done.analyzed.push(r.table);
    }
    await analyze(r.table);
  }
  return done;
}

/** The embedded engine's autovacuum round (decision 0064), with one info line when it did something. */
export async function runEmbeddedUpkeep(db: Database, logger: Logger): Promise<void> {
  const started = performance.now();
  const done = await embeddedUpkeep(db);
  if (done.vacuumed.length || done.analyzed.length) logger.info({ ...done, ms: Math.round(performance.now() - started) }, 'embedded engine upkeep');
}
