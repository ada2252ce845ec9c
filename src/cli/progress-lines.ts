/**
 * Progress for a long command whose output is not a terminal (piped to a log, run by cron): a
 * plain line at the first report and then at most every `everySeconds`, with the count, the
 * rate and an estimate of the time left. A terminal gets a redrawn bar instead.
 */
export function progressLines(options: { write: (line: string) => void; now: () => number; everySeconds?: number; unit: string }) {
  const every = (options.everySeconds ?? 5) * 1000;
  const started = options.now();
  let last: number | undefined;

  return {
    /** `done` units so far; `fraction` of the whole work done (0–1), when known. */
    report(done: number, fraction?: number): void {
      const now = options.now();
      if (last !== undefined && now - last < every) return;
      last = now;
      const seconds = Math.max((now - started) / 1000, 0.001);
      const rate = Math.round(done / seconds);
      const parts = [`progress: ${done} ${options.unit}`, `${rate} ${options.unit}/s`];
      if (fraction !== undefined && fraction > 0) {
        parts.push(`${Math.floor(Math.min(fraction, 1) * 100)}%`);
        parts.push(`ETA ${duration((seconds * (1 - Math.min(fraction, 1))) / Math.min(fraction, 1))}`);
      }
      options.write(parts.join(', '));
    },
  };
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
