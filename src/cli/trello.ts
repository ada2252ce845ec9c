import { createReadStream, statSync } from 'node:fs';
import cliProgress from 'cli-progress';
import type { Registry } from '../registry.ts';
import { importMembers } from '../identity/trello/legacy-import.ts';

/**
 * `npm run cli -- trello import FILE` and `trello migrate [--dry-run]` (docs/flows/trello-migration.md).
 * A progress bar on a terminal (cli-progress: redraws in place, or stays silent when piped);
 * problems go to standard error one per line, the summary to standard output.
 */
const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

function progressBar(label: string, total: number) {
  if (!process.stderr.isTTY) return undefined;
  const bar = new cliProgress.SingleBar({ format: `${label} [{bar}] {percentage}% | {value}/{total}`, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
  bar.start(total, 0);
  return bar;
}

export async function trelloImport(registry: Registry, file: string): Promise<number> {
  const size = statSync(file).size;
  const input = createReadStream(file);
  const bar = progressBar('importing', size);
  const summary = await importMembers({ db: registry.db, trello: registry.trello.queries, clock: registry.clock }, input, {
    onProgress: () => bar?.update(input.bytesRead),
    onSkip: (line, reason) => {
      if (bar) bar.stop();
      err(`line ${line}: ${reason} (skipped)`);
      if (bar) bar.start(size, input.bytesRead);
    },
  });
  bar?.update(size);
  bar?.stop();
  out(`read ${summary.lines} lines: ${summary.inserted} new, ${summary.updated} updated (${summary.linked} already linked: names only), ${summary.skipped.length} skipped`);
  return summary.skipped.length ? 1 : 0;
}

export async function trelloMigrate(registry: Registry, dryRun: boolean): Promise<number> {
  const total = await registry.trello.bulk.remaining();
  const bar = dryRun ? undefined : progressBar('migrating', total);
  const summary = await registry.trello.bulk.run({
    dryRun,
    onOutcome: (o) => {
      if (o.action === 'conflict') {
        const line = `conflict ${o.memberId} ${o.email ?? '-'}: ${o.reason}`;
        if (bar) { bar.stop(); err(line); bar.start(total, 0); } else err(line);
      } else if (dryRun) {
        out(`would link ${o.memberId} as ${o.email}${o.retire.length ? `, retiring ${o.retire.join(' ')}` : ''}`);
      }
    },
    // Without a terminal, one line per batch, so logs show how far a long run got.
    onBatch: (s) => (bar ? bar.update(s.examined) : err(`progress: ${s.examined}/${total} examined, ${s.linked} ${dryRun ? 'would be linked' : 'linked'}`)),
  });
  bar?.stop();
  out(`${dryRun ? 'dry run: ' : ''}${summary.examined} unlinked examined, ${summary.linked} ${dryRun ? 'would be linked' : 'linked'}, ${summary.conflicts} conflicts`);
  return 0;
}
