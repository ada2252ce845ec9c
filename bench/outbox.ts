import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { loadConfig } from '../src/config/load.ts';
import { openDatabase } from '../src/persistence/db.ts';
import { createRegistry } from '../src/registry.ts';
import { createLogger } from '../src/shared/logger.ts';
import { createMailDelivery, createOutboxUpkeep } from '../src/mail/delivery.ts';
import { createSmtpTransport } from '../src/mail/transport.ts';
import type { Clock } from '../src/shared/clock.ts';

/**
 * The mail outbox stays flat (docs/decisions/0054-mail-outbox-without-growth.md,
 * docs/data-at-scale.md): password-reset messages queued in batches and delivered through a
 * real SMTP server on 127.0.0.1 (smtp-server, accepting and discarding), with autovacuum off for
 * the two outbox tables (on a server: the operator's bulk load; the embedded engine has no
 * autovacuum). `pg_total_relation_size` of both tables is printed after each batch.
 *
 * The retention period of sent records is one batch on an injected clock (each batch is "one
 * day" later, MAIL_SENT_RETENTION_DAYS=1), so at every measure the live data is the same: one
 * batch of records, no body. Anything beyond that would be dead space.
 *
 * Rule: the size after the last batch ≤ 1.5 × the size after the first batch.
 *
 * BENCH_OUTBOX_MAILS (200000), BENCH_OUTBOX_BATCH (20000), BENCH_OUTBOX_SENDERS (4 delivery
 * workers, as four instances), BENCH_OUTBOX_MAX_SECONDS (600: stops after the batch that passes
 * it, and says so), MAIL_VACUUM_EVERY (the configured default when absent), DATABASE_URL (a
 * fresh schema, dropped at the end; embedded in a fresh DATA_DIR otherwise).
 */

export type { Row } from './report.ts';
import type { Row } from './report.ts';

const TARGET = 1.5;
const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

export interface OutboxBenchOptions {
  mails?: number;
  batch?: number;
  senders?: number;
  maxSeconds?: number;
  databaseUrl?: string | undefined;
  vacuumEvery?: number | undefined;
  log?: (line: string) => void;
}

export async function run(options: OutboxBenchOptions = {}): Promise<Row[]> {
  const mails = options.mails ?? Number(process.env.BENCH_OUTBOX_MAILS ?? 200_000);
  const batch = options.batch ?? Number(process.env.BENCH_OUTBOX_BATCH ?? 20_000);
  const senders = options.senders ?? Number(process.env.BENCH_OUTBOX_SENDERS ?? 4);
  const maxSeconds = options.maxSeconds ?? Number(process.env.BENCH_OUTBOX_MAX_SECONDS ?? 600);
  const url = options.databaseUrl ?? (process.env.DATABASE_URL || undefined);
  const vacuumEvery = options.vacuumEvery ?? (process.env.MAIL_VACUUM_EVERY ? Number(process.env.MAIL_VACUUM_EVERY) : undefined);
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));

  let received = 0;
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      stream.resume();
      stream.on('end', () => { received += 1; callback(); });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  const smtpUrl = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`;

  const schema = url ? `lanyard_bench_outbox_${randomBytes(4).toString('hex')}` : undefined;
  const dataDir = url ? undefined : mkdtempSync(join(tmpdir(), 'lanyard-bench-outbox-'));
  const db = await openDatabase({ url, schema, dataDir, poolSize: senders + 2, timeouts: { connectMs: 10_000, statementMs: 120_000, idleInTransactionMs: 120_000 } });
  let now = Date.UTC(2026, 0, 1);
  const clock: Clock = { now: () => now };
  const config = loadConfig({ NODE_ENV: 'test' }, {
    overrides: {
      logLevel: 'silent', secretKey: randomBytes(32).toString('base64url'), dataDir: dataDir ?? join(tmpdir(), 'lanyard-bench'),
      smtpUrl, mailSentRetentionDays: 1, ...(vacuumEvery !== undefined ? { mailVacuumEvery: vacuumEvery } : {}),
    },
  });
  const logger = createLogger('silent');
  const registry = await createRegistry(config, { logger, db, clock });
  const { outbox, queries } = registry.mail;
  // The registry's worker and three more, each with its own SMTP pool and its own count of
  // deletions, as separate instances have.
  const deliveries = [registry.mail.delivery];
  for (let i = 1; i < senders; i += 1) {
    deliveries.push(createMailDelivery({
      queries, box: registry.box, transport: createSmtpTransport(smtpUrl), clock, logger, from: config.mailFrom, messageIdDomain: 'bench.test', maxAttempts: 8,
      upkeep: createOutboxUpkeep({ queries, every: config.mailVacuumEvery, logger }),
    }));
  }
  if (url) await db.exec('ALTER TABLE mail_outbox SET (autovacuum_enabled = off); ALTER TABLE mail_outbox_bodies SET (autovacuum_enabled = off)');

  const size = async () => {
    const { rows } = await db.query<{ records: string; bodies: string }>(
      `SELECT pg_total_relation_size('mail_outbox')::text AS records, pg_total_relation_size('mail_outbox_bodies')::text AS bodies`,
    );
    return { records: Number(rows[0]!.records), bodies: Number(rows[0]!.bodies) };
  };

  log(`mail outbox: ${mails} password-reset messages in batches of ${batch}, ${senders} senders, SMTP ${smtpUrl}, ${url ? 'server' : 'embedded'}, MAIL_VACUUM_EVERY=${config.mailVacuumEvery}, autovacuum off`);
  log('  mails  |  records MB  |  bodies MB  |  total MB  |  mails/s');
  const started = performance.now();
  const totals: number[] = [];
  let queued = 0;
  let stoppedEarly = false;
  try {
    while (queued < mails) {
      const t0 = performance.now();
      if (queued) {
        now += 86_400_000 + 60_000;
        await registry.sweeper.sweepOnce(); // the previous batch's records pass the retention period
      }
      const n = Math.min(batch, mails - queued);
      for (let i = 0; i < n; i += 500) {
        await db.transaction(async (tx) => {
          for (let j = i; j < Math.min(n, i + 500); j += 1) {
            const k = queued + j;
            await outbox.enqueue(tx, {
              to: `person.${k}@mail${k % 97}.example.org`,
              template: 'password-reset',
              data: { name: `Person ${k}`, email: `person.${k}@mail${k % 97}.example.org`, link: `https://id.example.com/password/reset?token=${randomBytes(32).toString('base64url')}`, minutes: 60 },
            });
          }
        });
      }
      await Promise.all(deliveries.map((d) => d.deliverDue()));
      queued += n;
      const s = await size();
      totals.push(s.records + s.bodies);
      log(`  ${String(queued).padStart(7)} | ${String(mb(s.records)).padStart(11)} | ${String(mb(s.bodies)).padStart(10)} | ${String(mb(s.records + s.bodies)).padStart(9)} | ${Math.round(n / ((performance.now() - t0) / 1000))}`);
      if ((performance.now() - started) / 1000 > maxSeconds && queued < mails) {
        stoppedEarly = true;
        log(`  stopped after ${queued} mails: past BENCH_OUTBOX_MAX_SECONDS=${maxSeconds}`);
        break;
      }
    }
    const waiting = await queries.countWaiting();
    if (waiting || received !== queued) log(`  WARNING: ${waiting} still waiting, ${received} received of ${queued}`);
  } finally {
    for (const d of deliveries) await d.stop();
    await registry.close();
    if (schema) await db.exec(`DROP SCHEMA "${schema}" CASCADE`).catch(() => {});
    await db.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
  }
  const first = totals[0] ?? 0;
  const last = totals.at(-1) ?? 0;
  const ratio = first ? last / first : 0;
  const seconds = (performance.now() - started) / 1000;
  return [{
    scenario: `mail outbox size after ${queued} mails vs after the first ${Math.min(batch, queued)} (${url ? 'server' : 'embedded'}, autovacuum off)`,
    unit: 'MB',
    lanyard: mb(last),
    baseline: mb(first),
    ratio: Math.round(ratio * 100) / 100,
    target: TARGET,
    kind: 'max',
    verdict: totals.length < 2 ? '—' : ratio <= TARGET ? 'PASS' : 'MISS',
    notes: `pg_total_relation_size of mail_outbox + mail_outbox_bodies; retention = one batch (injected clock), so the live data is the same at each measure; ${Math.round(queued / seconds)} mails/s through SMTP${stoppedEarly ? `; stopped early at ${maxSeconds} s` : ''}`,
  }];
}

if (import.meta.main) {
  const rows = await run();
  for (const r of rows) process.stdout.write(`${r.verdict}  ${r.scenario}: ${r.lanyard} ${r.unit} (first batch ${r.baseline} ${r.unit}, ×${r.ratio}, target ≤ ×${r.target}) — ${r.notes}\n`);
  process.exit(0);
}
