/**
 * The shape of one benchmark result and the one way it is printed, shared by every suite of
 * `npm run bench` (bench/run.ts) and by each suite run alone.
 */

export interface Row {
  scenario: string;
  unit: string;
  /** Lanyard's figure; for a target that is not a ratio against a baseline, the measured value. */
  lanyard: number;
  /** The baseline's figure; for a target that is not a ratio against a baseline, the target value. */
  baseline: number;
  ratio: number;
  /** null: reported, no target. */
  target: number | null;
  verdict: 'PASS' | 'MISS' | '—';
  notes: string;
  /**
   * How `target` reads: `min` (default) ratio ≥ target, `max` ratio ≤ target, `counts` a row
   * whose columns are counts explained in its notes (the target column shows `targetText`).
   */
  kind?: 'min' | 'max' | 'counts';
  /** What the target column shows when it is not a plain ratio bound. */
  targetText?: string;
}

export type Log = (line: string) => void;

export const log: Log = (line) => process.stdout.write(`${line}\n`);

export const round = (n: number, digits = 0): number => Math.round(n * 10 ** digits) / 10 ** digits;

/** Ratios are shown cut (not rounded) to two decimals, so that a shown 0.85 never reads as a MISS. */
export const shownRatio = (ratio: number): string => (Math.floor(ratio * 100) / 100).toFixed(2);

/** A bound that must be exceeded is shown cut up instead (a shown 3.00 never reads as a PASS of ≤ 3). */
const shownUpper = (ratio: number): string => (Math.ceil(ratio * 100) / 100).toFixed(2);

export type Engine = 'embedded' | 'server';

/**
 * Token endpoints (refresh_token, client_credentials, userinfo, introspection) against bare
 * oidc-provider on the same engine: ≥ 0.90 on a PostgreSQL server, ≥ 0.85 embedded — PGlite runs
 * on the main thread, so the database's own work (the same for both sides) is a bigger share of a
 * request and what Lanyard adds weighs more there (docs/benchmarks.md).
 */
export function tokenTarget(engine: Engine): number {
  return engine === 'server' ? 0.9 : 0.85;
}

/** A row compared with a baseline: ratio = lanyard / baseline, verdict against `target` (≥). */
export function ratioRow(fields: Omit<Row, 'ratio' | 'verdict'>): Row {
  const ratio = fields.baseline > 0 ? fields.lanyard / fields.baseline : 0;
  return { ...fields, ratio: round(ratio, 3), verdict: fields.target === null ? '—' : ratio >= fields.target ? 'PASS' : 'MISS' };
}

/** A row whose figure must stay at or under a bound: ratio = value / reference, verdict against `target` (≤). */
export function upperRow(fields: Omit<Row, 'ratio' | 'verdict' | 'kind'>): Row {
  const ratio = fields.baseline > 0 ? fields.lanyard / fields.baseline : Number.POSITIVE_INFINITY;
  return { ...fields, kind: 'max', ratio: round(ratio, 3), verdict: fields.target === null ? '—' : ratio <= fields.target ? 'PASS' : 'MISS' };
}

const ratioCell = (r: Row): string => (r.kind === 'counts' ? String(r.ratio) : r.kind === 'max' ? shownUpper(r.ratio) : shownRatio(r.ratio));

const targetCell = (r: Row): string => r.targetText ?? (r.target === null ? '(none)' : `${r.kind === 'max' ? '≤' : '≥'} ${r.target.toFixed(2)}`);

/** The table, then one verdict line per row. */
export function printReport(rows: Row[], out: Log = log): void {
  const header = ['scenario', 'unit', 'Lanyard', 'baseline', 'ratio', 'target', 'verdict', 'notes'];
  const cells = rows.map((r) => [r.scenario, r.unit, String(r.lanyard), String(r.baseline), ratioCell(r), targetCell(r), r.verdict, r.notes]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => `| ${c.map((v, i) => (i >= 2 && i <= 5 ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join(' | ')} |`;
  out('');
  out(line(header));
  out(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const c of cells) out(line(c));
  out('');
  for (const r of rows) {
    if (r.kind === 'counts') out(`${r.verdict}: ${r.scenario}: ${r.notes}`);
    else if (r.target === null) out(`(reported): ${r.scenario} at ${ratioCell(r)}×`);
    else out(`${r.verdict}: ${r.scenario} at ${ratioCell(r)}× (target ${targetCell(r)}×)`);
  }
}
