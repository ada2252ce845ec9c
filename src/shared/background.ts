/**
 * Work a request starts but does not wait for (so its response time reveals nothing about it).
 * Failures are reported, never thrown at the request; `idle()` waits for what is in flight —
 * graceful shutdown and tests use it.
 */
export function createBackground(report: (name: string, err: unknown) => void) {
  const inFlight = new Set<Promise<unknown>>();
  return {
    run(name: string, work: () => Promise<unknown>): void {
      // Started on the next turn of the event loop, once the response has been handed to the
      // socket: the embedded database runs on this thread, so work started at once would delay
      // the response by what it does — and that time would tell.
      const task = new Promise<void>((resolve) => setImmediate(resolve))
        .then(work)
        .catch((err: unknown) => report(name, err))
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
    },
    async idle(): Promise<void> {
      while (inFlight.size) await Promise.allSettled([...inFlight]);
    },
  };
}

export type Background = ReturnType<typeof createBackground>;
