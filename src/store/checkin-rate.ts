/**
 * A population's check-in rate from its per-second buckets (docs/pace-steering.md): `count` check-ins
 * since the unix second `oldest`, at `now` (unix ms), over a window of `windowS` seconds. The current second
 * is still filling up, so the span runs to `now`, not to the end of its bucket; it is at least one second.
 * The store (recordCheckin) and the pace simulation (src/rounds/pace-rate.ts) both use it.
 */
export function checkinRate(count: number, oldest: number, now: number, windowS: number): number {
  const span = Math.min(windowS, Math.max(1, (now - oldest * 1000) / 1000));
  return count / span;
}
