import { AppError } from '../errors';
import type { DpSetting } from '../plan/dp-check';
import type { NewPlanPrivacy, RoundPrivacy } from '../store/types';
import type { DpRoundResult } from './mechanism';
import { epsilonAfter } from './accountant';

/** The epsilon a dp plan has spent (at its target delta) once `rounds` rounds have completed. */
export function epsilonSpent(dp: DpSetting, rounds: number): number {
  if (rounds === 0) return 0;
  return epsilonAfter(rounds, {
    samplingRate: dp.samplingRate,
    noiseMultiplier: dp.noiseMultiplier,
    delta: dp.target.delta,
  }).epsilon;
}

/**
 * Why a dp plan may not run round `round` (its epsilon would pass the target), or undefined when it may.
 */
export function overBudget(dp: DpSetting, round: number): string | undefined {
  const target = dp.target.epsilon;
  if (target === undefined) return undefined;
  const after = epsilonSpent(dp, round);
  if (after <= target) return undefined;
  const spent = epsilonSpent(dp, round - 1);
  return (
    `privacy budget: round ${round} would take epsilon to ${after.toPrecision(4)} (delta ${dp.target.delta}, ` +
    `${dp.accounting}), past the target ${target}; ${round - 1} rounds spent ${spent.toPrecision(4)}`
  );
}

/**
 * Throws AppError PLAN_OUT_OF_BOUNDS when even the first round of a dp plan would spend more than its target:
 * such a plan could never release anything, and is refused rather than stored.
 */
export function checkFirstRound(dp: DpSetting): void {
  const over = overBudget(dp, 1);
  if (over === undefined) return;
  throw new AppError('PLAN_OUT_OF_BOUNDS', 'the plan cannot run one round within its privacy budget', [
    { path: '/dp/target/epsilon', message: over },
  ]);
}

/** What a dp plan stores at creation: the fixed part of its privacy record and the first round's clip. */
export function newPlanPrivacy(dp: DpSetting): NewPlanPrivacy {
  return {
    delta: dp.target.delta,
    ...(dp.target.epsilon === undefined ? {} : { target_epsilon: dp.target.epsilon }),
    accounting: dp.accounting,
    noise_multiplier: dp.noiseMultiplier,
    clip: dp.initialClip,
  };
}

/**
 * What completing round `round` of a dp plan charges: the epsilon spent after it (its round n is its n-th
 * completed one, since round n opens only after round n-1 completed) and the next clip the finalizer chose.
 */
export function roundCharge(dp: DpSetting, round: number, result: DpRoundResult | undefined): RoundPrivacy {
  // A finalizer that added no noise must not let the round be released as private.
  if (!result) throw new Error(`round ${round} of a dp plan was finalized without its noise`);
  return {
    epsilon: epsilonSpent(dp, round),
    nextClip: result.nextClip,
    ...(result.unclippedFraction === undefined ? {} : { unclippedFraction: result.unclippedFraction }),
  };
}
