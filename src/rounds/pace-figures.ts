/**
 * The figures of a pace simulation that the population test asserts and docs/pace-steering.md reports
 * (scripts/pace-plot.js), computed in one place so that the two say the same thing.
 */
import type { PaceSimOptions, PaceSimResult } from './pace-sim';

/** One round's figures. */
export interface RoundFigures {
  readonly round: number;
  readonly attempt: number;
  /** When it opened, in virtual seconds. */
  readonly openedS: number;
  /** Seconds from opening until its last slot was filled; Infinity if it never was. */
  readonly fillS: number;
  /**
   * The largest one-second count of check-ins over the mean count per second, in the selection timeout that
   * follows its opening (NaN when the simulation ends before that window does).
   */
  readonly peakToMean: number;
}

/** The largest one-second count in `[from, to)` over the mean count per second there. */
export function peakToMean(perSecond: Int32Array, from: number, to: number): number {
  if (to > perSecond.length || to <= from) return NaN;
  let peak = 0;
  let sum = 0;
  for (let s = from; s < to; s++) {
    peak = Math.max(peak, perSecond[s]!);
    sum += perSecond[s]!;
  }
  return sum === 0 ? Infinity : peak / (sum / (to - from));
}

/** Each round's figures. */
export function roundFigures(
  sim: PaceSimResult,
  o: Pick<PaceSimOptions, 'selectionTimeoutS'>,
): RoundFigures[] {
  return sim.rounds.map((r) => {
    const from = Math.floor(r.openedAt / 1000);
    return {
      round: r.round,
      attempt: r.attempt,
      openedS: r.openedAt / 1000,
      fillS: r.filledAt === undefined ? Infinity : (r.filledAt - r.openedAt) / 1000,
      peakToMean: peakToMean(sim.perSecond, from, from + o.selectionTimeoutS),
    };
  });
}
