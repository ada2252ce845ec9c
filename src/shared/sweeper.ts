import type { Logger } from './logger.ts';

/** One kind of background clean-up: expired rows, stale counters, accounts due for erasure. */
export interface SweepTask {
  name: string;
  run(): Promise<unknown>;
}

/**
 * The background sweeper: every `intervalSeconds`, the tasks in order. Lookups already ignore
 * expired rows, so sweeping late is harmless and never blocks a request; a failure is one
 * warn-level line and the next round tries again.
 */
export function createSweeper(deps: { tasks: SweepTask[]; logger: Logger }) {
  let timer: NodeJS.Timeout | undefined;

  async function sweepOnce(): Promise<void> {
    for (const task of deps.tasks) {
      try {
        await task.run();
      } catch (err) {
        deps.logger.warn({ task: task.name, err: { message: (err as Error).message } }, 'sweeping expired rows failed');
        return;
      }
    }
  }

  return {
    sweepOnce,
    /** Starts the timer (0 disables it); unref'd, so it never keeps the process alive. */
    start(intervalSeconds: number): void {
      if (intervalSeconds > 0 && !timer) timer = setInterval(() => void sweepOnce(), intervalSeconds * 1000).unref();
    },
    stop(): void {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}

export type Sweeper = ReturnType<typeof createSweeper>;
