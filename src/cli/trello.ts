import { createReadStream, statSync } from 'node:fs';
import cliProgress from 'cli-progress';
import type { Registry } from '../registry.ts';
import { importMembers } from '../legacy-trello/legacy-import.ts';
import { progressLines } from './progress-lines.ts';

/**
 * `npm run cli -- trello import FILE` and `trello migrate [--dry-run]` (docs/flows/trello-migration.md).
 * A progress bar on a terminal (cli-progress: redraws in place on standard error); when
 * standard output is not a terminal (a log, cron), a progress line every few seconds there
 * instead. Problems go to standard error one per line, the summary to standard output.
 */

/** A command's standard output and error (src/cli/main.ts passes the process's own, tests their own). */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

const writer = (stream: NodeJS.WritableStream) => (line: string) => { stream.write(`${line}\n`); };

/** Exit status of `trello migrate` when members were left unlinked by conflicts (docs/operations.md). */
export const EXIT_CONFLICTS = 3;

function progressBar(io: CliIo, label: string, total: number) {
  if (!io.stderr.isTTY) return undefined;
  const bar = new cliProgress.SingleBar({ format: `${label} [{bar}] {percentage}% | {value}/{total}`, stream: io.stderr as NodeJS.WriteStream, hideCursor: true }, cliProgress.Presets.shades_classic);
  bar.start(total, 0);
  return bar;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export async function trelloImport(registry: Registry, file: string, io: CliIo): Promise<number> {
  const out = writer(io.stdout);
  const err = writer(io.stderr);
  const size = statSync(file).size;
  const input = createReadStream(file);
  const bar = progressBar(io, 'importing', size);
  const lines = io.stdout.isTTY ? undefined : progressLines({ write: out, now: () => registry.clock.now(), unit: 'lines' });
  const report = (line: number, reason: string, what: string) => {
    if (bar) bar.stop();
    err(`line ${line}: ${reason} (${what})`);
    if (bar) bar.start(size, input.bytesRead);
  };
  const summary = await importMembers({ db: registry.db, trelloMembers: registry.trello.members, clock: registry.clock }, input, {
    onProgress: (n) => {
      bar?.update(input.bytesRead);
      lines?.report(n, size ? input.bytesRead / size : undefined);
    },
    onSkip: (line, reason) => report(line, reason, 'skipped'),
    onFlag: (line, reason) => report(line, reason, 'flagged'),
  });
  bar?.update(size);
  bar?.stop();
  out(`read ${summary.lines} lines: ${summary.inserted} new, ${summary.updated} updated (${summary.linked} already linked: names only), ${summary.skippedCount} skipped, ${summary.flaggedCount} flagged`);
  return summary.skippedCount ? 1 : 0;
}

export async function trelloMigrate(registry: Registry, dryRun: boolean, io: CliIo): Promise<number> {
  const out = writer(io.stdout);
  const err = writer(io.stderr);
  const total = await registry.trello.bulk.remaining();
  const bar = dryRun ? undefined : progressBar(io, 'migrating', total);
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
  if (!dryRun && summary.linked) {
    // The command only queues: the server's mail worker delivers (docs/operations.md).
    const waiting = await registry.mail.queries.countWaiting();
    out(`${plural(summary.linked, 'set-password message')} queued (links to ${registry.config.issuer}); ${plural(waiting, 'message')} ${waiting === 1 ? 'waits' : 'wait'} in the outbox for the server's mail worker`);
  }
  if (summary.conflicts) {
    err(`${plural(summary.conflicts, 'member')} ${dryRun ? 'would be' : 'were'} left unlinked by conflicts (listed above): exit status ${EXIT_CONFLICTS}`);
    return EXIT_CONFLICTS;
  }
  return 0;
}
