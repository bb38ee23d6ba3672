/**
 * Reconnect delays: exponential backoff with full jitter (AWS Architecture Blog,
 * "Exponential Backoff And Jitter"): attempt n waits a uniformly random time in
 * [0, min(maxMs, baseMs * 2^n)). Full jitter spreads a crowd of clients that lost the same
 * server over the whole window instead of bringing them back in waves.
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  // 2^30 already exceeds any sensible cap; clamping the exponent avoids Infinity.
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.floor(random() * ceiling);
}
