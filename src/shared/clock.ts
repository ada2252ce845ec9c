/**
 * The source of "now". Domain code and the storage adapter take a Clock instead of calling
 * Date.now() so that tests can move time (expiry, grace periods) without sleeping.
 * oidc-provider reads Date.now() itself, so tests that move its time fake Date globally.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export function epochSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000);
}
