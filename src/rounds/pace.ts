/**
 * Pace steering: the retry window a client that was not assigned a task is told to come back in.
 *
 * Clients have no inbound endpoint, so the only lever the server has on when they arrive is the window
 * `[min_seconds, max_seconds]` it answers a rejected check-in with; the client waits a uniformly random
 * time inside it. The window is sized from what the server can observe without per-client state.
 */

/** What pace steering looks at; every field is observable from the store. */
export interface PaceInput {
  /** The population's observed check-ins per second (recent window). */
  readonly checkinRate: number;
  /** Clients the next selection needs (remaining slots of selecting rounds, else the next round's target). */
  readonly need: number;
  /** Seconds until those clients are needed; 0 if a round is selecting now. */
  readonly secondsUntilNeeded: number;
  /** Configured bounds of any window (`RETRY_MIN_SECONDS`, `RETRY_MAX_SECONDS`). */
  readonly minSeconds: number;
  readonly maxSeconds: number;
  /**
   * The population check-in rate to stay under, per second (`CHECKIN_RATE_CAP`); 0 or absent: no cap.
   * Windows can hold it for up to about `cap · maxSeconds / 2` devices (the widest window is `maxSeconds`).
   */
  readonly rateCap?: number;
}

/** A retry window in whole seconds, `min_seconds <= max_seconds`, both inside the configured bounds. */
export interface RetryWindow {
  readonly min_seconds: number;
  readonly max_seconds: number;
}

/** Relative jitter applied to both ends of a window, so that clients answered in the same second differ. */
const JITTER = 0.1;

/**
 * How steeply the cap's window grows with the rate (see {@link retryWindow}). 2 makes a population settle
 * at `(N · cap² / maxSeconds)^(1/3)` check-ins per second, under the cap until `N` nears
 * `cap · maxSeconds / 2`, while far below the cap the need's window stays the wider (small populations are
 * steered as before). In the 10,000-device simulation at a cap of 100 (`pace-population.test.ts`): 1 settles
 * at 40/s, but at the default cap it would also take over every population with a surplus (a window of
 * 1.2 s per check-in per second); 2 settles at 53/s, busiest second 85; 3 at 62/s, swaying more, with
 * seconds over the cap (105).
 */
const CAP_EXPONENT = 2;

/**
 * Sizes a retry window (pure; `random` in [0, 1) is injectable for tests).
 *
 * The model. Let `r` be the observed check-in rate, `n` the clients needed, `b = max(minSeconds, 1)` the
 * base period (the shortest time a client is ever sent away for) and `C` the rate cap.
 *
 * - Need: over one base period about `r·b` clients check in; spread uniformly over a window of width
 *   `W = r·b² / n` they come back at `n` per base period, which is what a selection consumes (a
 *   proportional controller on the population's cycle).
 * - Cap: a window `[b, b + W_C]` of width `W_C = 2·maxSeconds·(r / C)²` keeps each client away
 *   `maxSeconds·(r / C)²` on average, so by Little's law a population of `N` idle devices settles where
 *   `N = r · maxSeconds · (r / C)²`, under `C` while `N < C · maxSeconds` (and the window is clamped to
 *   `maxSeconds`, so the cap holds up to about `C · maxSeconds / 2` devices). The estimate of the population,
 *   `N ≈ r · W_C / 2`, also tells a large population from a small one.
 *
 * Then:
 * - Small population (`r·b <= n` and `r·W_C/2 <= n`: everyone who checks in is needed): the clients are told
 *   to come back together, in a narrow window of width `b` at the moment they are needed
 *   (`secondsUntilNeeded`).
 * - Surplus, need's window the wider (`W >= W_C`, a population far below the cap): `[secondsUntilNeeded,
 *   secondsUntilNeeded + W]`, as before the cap existed.
 * - Surplus, cap's window the wider: `[b, b + W_C]`, the same whatever the round is doing. It does not wait
 *   for `secondsUntilNeeded`: a large population told to come back when the next round opens comes back all
 *   at once when it opens (a stampede), while a population spread over a window that does not depend on
 *   the round's phase checks in at a steady rate, which fills each round as it opens.
 * - Nothing needed (`n <= 0`, e.g. an unknown population or only paused plans): come back late and spread,
 *   in the upper half of the configured range.
 * - Jitter: the start moves up to 10% later, the end up to 10% either way; then everything is rounded to
 *   whole seconds and clamped to the bounds.
 */
export function retryWindow(input: PaceInput, random: () => number = Math.random): RetryWindow {
  const minS = Math.max(0, input.minSeconds);
  const maxS = Math.max(minS, input.maxSeconds);
  const clamp = (x: number): number => Math.min(maxS, Math.max(minS, x));
  const rate = finiteOr(input.checkinRate, 0);
  const need = finiteOr(input.need, 0);
  const until = finiteOr(input.secondsUntilNeeded, 0);
  const cap = finiteOr(input.rateCap ?? 0, 0);
  const base = Math.max(minS, 1);
  const capWidth = cap > 0 ? 2 * maxS * Math.pow(rate / cap, CAP_EXPONENT) : 0;

  let lo: number;
  let width: number;
  if (need <= 0) {
    lo = Math.max(minS, maxS / 2);
    width = maxS - lo;
  } else if (rate * base <= need && (rate * capWidth) / 2 <= need) {
    lo = Math.max(until, minS);
    width = base;
  } else if (capWidth <= (rate * base * base) / need) {
    lo = Math.max(until, minS);
    width = (rate * base * base) / need;
  } else {
    lo = base;
    width = capWidth;
  }

  // The start only moves later (never before the clients are needed); the end moves either way.
  const start = clamp(Math.floor(lo * (1 + JITTER * random())));
  const end = clamp(Math.ceil((lo + width) * (1 + JITTER * (2 * random() - 1))));
  // Jitter may cross the ends of a narrow window; keep at least one second of spread when the bounds allow.
  const max = Math.max(end, Math.min(maxS, start + 1));
  return { min_seconds: start, max_seconds: max };
}

function finiteOr(x: number, fallback: number): number {
  return Number.isFinite(x) && x > 0 ? x : fallback;
}
