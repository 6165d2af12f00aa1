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
}

/** A retry window in whole seconds, `min_seconds <= max_seconds`, both inside the configured bounds. */
export interface RetryWindow {
  readonly min_seconds: number;
  readonly max_seconds: number;
}

/** Relative jitter applied to both ends of a window, so that clients answered in the same second differ. */
const JITTER = 0.1;

/**
 * Sizes a retry window (pure; `random` in [0, 1) is injectable for tests).
 *
 * The model. Let `r` be the observed check-in rate, `n` the clients needed and `b = max(minSeconds, 1)` the
 * base period (the shortest time a client is ever sent away for). Over one base period about `r·b` clients
 * check in; if they are spread uniformly over a window of width `W`, they come back at `r·b / W` per
 * second. Choosing `W = r·b² / n` makes that `n / b`: each base period's rejected clients return at about
 * `n` per base period, which is what a selection consumes, so surplus clients are kept away in proportion
 * to the surplus (a proportional controller on the population's cycle: a population whose rate stays
 * high keeps getting longer windows, up to `maxSeconds`).
 *
 * - The window never opens before the clients are needed: it starts at `secondsUntilNeeded`.
 * - Small population (`r·b <= n`, everyone who checks in is needed): the clients are told to come back
 *   together, in a narrow window of width `b` at the moment they are needed.
 * - Nothing needed (`n <= 0`, e.g. an unknown population or only paused plans): come back late and spread,
 *   in the upper half of the configured range.
 * - Jitter: the start moves up to 10% later, the end up to 10% either way; then everything is rounded to whole seconds and clamped to the bounds.
 */
export function retryWindow(input: PaceInput, random: () => number = Math.random): RetryWindow {
  const minS = Math.max(0, input.minSeconds);
  const maxS = Math.max(minS, input.maxSeconds);
  const clamp = (x: number): number => Math.min(maxS, Math.max(minS, x));
  const rate = finiteOr(input.checkinRate, 0);
  const need = finiteOr(input.need, 0);
  const until = finiteOr(input.secondsUntilNeeded, 0);
  const base = Math.max(minS, 1);

  let lo: number;
  let width: number;
  if (need <= 0) {
    lo = Math.max(minS, maxS / 2);
    width = maxS - lo;
  } else {
    lo = Math.max(until, minS);
    const arriving = rate * base;
    width = arriving <= need ? base : (arriving * base) / need;
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
