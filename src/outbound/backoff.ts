// When to try a temporarily refused submission again: exponential backoff with
// jitter, so that many messages deferred by one relay outage do not all return at
// the same instant (the "thundering herd"). Pure; the random source is injected.

/** Longest wait between two attempts (unless the base delay itself is longer). */
export const MAX_BACKOFF_MS = 3_600_000;

/**
 * Delay before attempt `attempt + 1`, after `attempt` (1-based) failed temporarily:
 * base · 2^(attempt−1), capped, then "equal jitter": a uniform value in [½, 1] of it.
 */
export function retryDelayMs(attempt: number, baseMs: number, random: () => number = Math.random): number {
  const cap = Math.max(baseMs, MAX_BACKOFF_MS);
  const full = Math.min(cap, baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 40));
  return Math.round(full / 2 + (random() * full) / 2);
}
