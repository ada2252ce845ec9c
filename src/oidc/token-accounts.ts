import { performance } from 'node:perf_hooks';

/**
 * The account read behind each token use (refresh, userinfo, introspection: `findAccount`),
 * remembered for a moment (docs/decisions/0040-token-account-cache.md).
 *
 * Every refresh reads the account so that a deactivated account or a tightened policy stops it
 * (issue 11); on the token endpoint that read is Lanyard's largest cost over the bare engine
 * (docs/benchmarks.md, "Where the time goes"). Requests for one account come in bursts — the
 * code exchange right after a login, an app refreshing and calling userinfo together, several
 * tabs — and within such a burst the row does not change. So a row is kept for `ttlMs` (one
 * second by default) of real, monotonic time (not the injected clock: the bound is on how stale
 * a row may be, and a test's frozen clock must not freeze it), and:
 *
 * - every write this process makes to the tables the row is made of drops the whole cache at
 *   once (`invalidate`, wired to src/persistence/write-watch.ts), so on one instance a change
 *   applies to the very next request;
 * - a row read while such a write was under way is not kept (the generation check);
 * - another instance's change applies within `ttlMs`: the only staleness, and bounded.
 *
 * An absent account is never remembered. Entries are few (one per account active in the last
 * second) and capped.
 */
export function createTokenAccounts<T>(deps: { load: (id: string) => Promise<T | undefined>; ttlMs: number; maxEntries?: number }) {
  const { load, ttlMs } = deps;
  const maxEntries = deps.maxEntries ?? 10_000;
  const entries = new Map<string, { at: number; generation: number; value: T }>();
  let generation = 0;

  return {
    async get(id: string): Promise<T | undefined> {
      if (ttlMs <= 0) return load(id);
      const now = performance.now();
      const hit = entries.get(id);
      if (hit && hit.generation === generation && now - hit.at < ttlMs) return hit.value;
      const started = generation;
      const value = await load(id);
      if (value !== undefined && started === generation) {
        entries.delete(id);
        if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
        entries.set(id, { at: now, generation, value });
      }
      return value;
    },

    /** A watched table changed in this process: nothing remembered is used again. */
    invalidate(): void {
      generation += 1;
      entries.clear();
    },

  };
}

export type TokenAccounts<T> = ReturnType<typeof createTokenAccounts<T>>;
