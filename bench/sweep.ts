import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openDatabase } from '../src/persistence/db.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { createOidcPayloadQueries } from '../src/persistence/queries/oidc-payloads.ts';
import { sweepExpiredPayloads } from '../src/oidc/adapter.ts';
import { createLogger } from '../src/shared/logger.ts';

/**
 * How fast the sweeper deletes expired protocol rows (docs/scaling.md, "Tables that grow"):
 * BENCH_SWEEP_ROWS (default 200,000) expired access tokens among as many live ones, deleted by one
 * sweep round (`sweepExpiredPayloads`, SWEEP_BATCH_SIZE 5,000, no per-round bound) against the
 * former statement (500 at a time by primary key), on a copy of the same rows. Rows/s, ratio
 * new/old; target ≥ 5× the former rate (the cap per round is then the configuration's, not the
 * statement's). DATABASE_URL: server (fresh schema, dropped); embedded otherwise.
 */
export type { Row } from './report.ts';
import type { Row } from './report.ts';

export async function run(options: { rows?: number; databaseUrl?: string | undefined } = {}): Promise<Row[]> {
  const n = options.rows ?? Number(process.env.BENCH_SWEEP_ROWS ?? 200_000);
  const url = options.databaseUrl ?? (process.env.DATABASE_URL || undefined);
  const schema = url ? `lanyard_bench_sweep_${randomBytes(4).toString('hex')}` : undefined;
  const dataDir = url ? undefined : mkdtempSync(join(tmpdir(), 'lanyard-bench-sweep-'));
  const db = await openDatabase({ url, schema, dataDir, poolSize: 2, timeouts: { connectMs: 10_000, statementMs: 600_000, idleInTransactionMs: 60_000 } });
  const now = new Date('2026-06-01T00:00:00Z');
  const fill = async () => {
    await db.query(
      `INSERT INTO oidc_payloads (model, id_hash, payload, grant_id, expires_at)
       SELECT 'AccessToken', md5(i::text || $3), jsonb_build_object('jti', i, 'kind', 'AccessToken', 'scope', 'openid email'), 'g' || (i % 1000),
              CASE WHEN i % 2 = 0 THEN $1::timestamptz - interval '1 minute' ELSE $1::timestamptz + interval '1 hour' END
       FROM generate_series(1, $2::int) i`,
      [now, 2 * n, randomBytes(4).toString('hex')],
    );
    await db.query('ANALYZE oidc_payloads');
  };
  try {
    await migrate(db);
    await fill();
    let t0 = performance.now();
    let old = 0;
    for (;;) {
      const { rowCount } = await db.query(
        `DELETE FROM oidc_payloads WHERE (model, id_hash) IN (SELECT model, id_hash FROM oidc_payloads WHERE expires_at <= $1 LIMIT $2)`,
        [now, 500],
      );
      old += rowCount;
      if (rowCount < 500) break;
    }
    const oldRate = old / ((performance.now() - t0) / 1000);
    await db.query('TRUNCATE oidc_payloads');
    await fill();
    t0 = performance.now();
    const removed = await sweepExpiredPayloads({ queries: createOidcPayloadQueries(db), clock: { now: () => now.getTime() }, logger: createLogger('silent'), batch: 5000, maxRows: Number.MAX_SAFE_INTEGER });
    const newRate = removed / ((performance.now() - t0) / 1000);
    const ratio = newRate / oldRate;
    return [{
      scenario: `expired protocol rows swept, ${n.toLocaleString('en')} of ${(2 * n).toLocaleString('en')} (${url ? 'server' : 'embedded'})`,
      unit: 'rows/s',
      lanyard: Math.round(newRate),
      baseline: Math.round(oldRate),
      ratio: Math.round(ratio * 100) / 100,
      target: 5,
      verdict: removed === n && old === n ? (ratio >= 5 ? 'PASS' : 'MISS') : '—',
      notes: `batches of 5,000 by ctid with SKIP LOCKED against the former 500 by primary key; the former round stopped at 10,000 rows a minute per instance, the new one at SWEEP_MAX_ROWS (250,000)`,
    }];
  } finally {
    if (schema) await db.exec(`DROP SCHEMA "${schema}" CASCADE`).catch(() => {});
    await db.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  for (const r of await run()) process.stdout.write(`${r.verdict.padEnd(4)}  ${r.scenario}: ${r.lanyard} ${r.unit} against ${r.baseline} (×${r.ratio}, target ≥ ×${r.target}) — ${r.notes}\n`);
  process.exit(0);
}
