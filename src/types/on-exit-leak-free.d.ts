// on-exit-leak-free ships no types: the functions Lanyard uses (src/shared/logger.ts).
declare module 'on-exit-leak-free' {
  /** Calls `fn(obj, 'exit')` on the process's 'exit' while `obj` is alive (held weakly); handlers run in registration order. */
  export function register<T extends object>(obj: T, fn: (obj: T, event: 'exit') => void): void;
  /** The same on 'beforeExit'. */
  export function registerBeforeExit<T extends object>(obj: T, fn: (obj: T, event: 'beforeExit') => void): void;
  export function unregister(obj: object): void;
}
