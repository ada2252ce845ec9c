import type { Logger } from './logger.ts';

/** One kind of background clean-up: expired rows, stale counters, accounts due for erasure. */
export interface SweepTask {
  name: string;
  run(): Promise<unknown>;
}

/**
 * The background sweeper: every `intervalSeconds`, the tasks in order. Lookups already ignore
 * expired rows, so sweeping late is harmless and never blocks a request; a failure is one
 * warn-level line naming the task, the round goes on with the next task (one task that keeps
 * failing must not stop the others: sent mail and session records would pile up behind it), and
 * the next round tries again. A round still running when the next is due is not doubled.
 */
export function createSweeper(deps: { tasks: SweepTask[]; logger: Logger }) {
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> | undefined;

  async function sweepTasks(): Promise<void> {
    for (const task of deps.tasks) {
      try {
        await task.run();
      } catch (err) {
        deps.logger.warn({ task: task.name, err: { message: (err as Error).message } }, 'sweeping expired rows failed');
      }
    }
  }

  /** One round; a call while a round runs waits for that round instead of starting another. */
  function sweepOnce(): Promise<void> {
    round ??= sweepTasks().finally(() => { round = undefined; });
    return round;
  }

  return {
    sweepOnce,
    /** The tasks' names, in the order a round runs them. */
    names: (): string[] => deps.tasks.map((t) => t.name),
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
