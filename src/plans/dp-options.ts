/**
 * The `--dp` options of a library plan and the `dp` section they make (schemas/plan.schema.json,
 * `DifferentialPrivacy`; docs/server.md, "Differential privacy"). The server applies the mechanism; these
 * options only say what it clips, how much noise it adds and how much privacy the plan may spend.
 */
import { stepsWithin } from '../dp/accountant';
import { checkFirstRound } from '../dp/budget';
import { AppError } from '../errors';
import type { DifferentialPrivacy, Plan } from '../generated/plan';
import { ADAPTIVE_DEFAULTS, dpOf } from '../plan/dp-check';
import { checkPlan } from '../plan/validate';
import {
  boolOption,
  flagOf,
  optionalChoiceOption,
  optionalIntOption,
  optionalNumberOption,
  type OptionSpecs,
  type ScheduleOptions,
} from './options';

/** How the accountant charges a round (`dp.accounting`). */
export type DpAccounting = 'no-amplification' | 'subsampled';

/** The differential-privacy options; every one but `dp` and `adaptiveClip` is unset unless given. */
export interface DpOptions {
  /** Asks the server for central DP: it clips each client's record, sums and noises the sum. */
  dp: boolean;
  /** The clip norm C; with adaptiveClip, the first round's. */
  clip: number | undefined;
  /** z: the noise on the record sum has standard deviation z x C. */
  noiseMultiplier: number | undefined;
  adaptiveClip: boolean;
  targetQuantile: number | undefined;
  clipLearningRate: number | undefined;
  clippedCountStddev: number | undefined;
  targetEpsilon: number | undefined;
  targetDelta: number | undefined;
  accounting: DpAccounting | undefined;
  populationSize: number | undefined;
}

/** The target delta when `--target-delta` is not given. */
export const DEFAULT_TARGET_DELTA = 1e-5;

/** `--dp` and the options that go with it. */
export function dpOptions(): OptionSpecs<DpOptions> {
  return {
    dp: boolOption(
      'central differential privacy: the server clips each client update, sums and adds Gaussian noise',
      false,
    ),
    clip: optionalNumberOption(
      "--dp: L2 clip norm of a client's record (with --adaptive-clip, the first round's)",
      'required with --dp',
      { min: 0, exclusiveMin: true, max: 1e9 },
    ),
    noiseMultiplier: optionalNumberOption(
      '--dp: noise multiplier z; the noise on the sum has standard deviation z x clip',
      'required with --dp',
      { min: 0, max: 1000 },
    ),
    adaptiveClip: boolOption(
      "--dp: move the clip each round towards --target-quantile of the clients' norms (Andrew et al.)",
      false,
    ),
    targetQuantile: optionalNumberOption(
      "--adaptive-clip: the quantile of the clients' norms the clip tracks",
      String(ADAPTIVE_DEFAULTS.targetQuantile),
      { min: 0, max: 1 },
    ),
    clipLearningRate: optionalNumberOption(
      '--adaptive-clip: learning rate of the clip (geometric steps)',
      String(ADAPTIVE_DEFAULTS.learningRate),
      { min: 0, max: 100 },
    ),
    clippedCountStddev: optionalNumberOption(
      '--adaptive-clip: noise standard deviation on the count of unclipped clients',
      `${ADAPTIVE_DEFAULTS.countStddevPerClient} x target clients`,
      { min: 0, exclusiveMin: true, max: 1e9 },
    ),
    targetEpsilon: optionalNumberOption(
      '--dp: the epsilon the plan may spend; the server stops before a round that would pass it',
      'required with --dp unless --noise-multiplier is 0',
      { min: 0, exclusiveMin: true, max: 1000 },
    ),
    targetDelta: optionalNumberOption('--dp: the delta epsilon is spent at', '1e-5', {
      min: 0,
      exclusiveMin: true,
      max: 1,
      exclusiveMax: true,
    }),
    accounting: optionalChoiceOption(
      '--dp: charge every round on all clients, or as Poisson subsampling at target clients / --population-size (which check-in is not)',
      'no-amplification',
      ['no-amplification', 'subsampled'],
    ),
    populationSize: optionalIntOption('--accounting subsampled: devices in the population', 'none', {
      min: 1,
    }),
  };
}

const optionError = (key: keyof DpOptions, why: string): AppError =>
  new AppError('BAD_REQUEST', `option --${flagOf(key)}: ${why}`);

// The options that mean nothing without --dp, and those that mean nothing without --adaptive-clip.
const DP_ONLY: readonly (keyof DpOptions)[] = [
  'clip',
  'noiseMultiplier',
  'adaptiveClip',
  'targetEpsilon',
  'targetDelta',
  'accounting',
  'populationSize',
];
const ADAPTIVE_ONLY: readonly (keyof DpOptions)[] = [
  'targetQuantile',
  'clipLearningRate',
  'clippedCountStddev',
];

/**
 * Throws AppError BAD_REQUEST, naming the option, when the dp options do not fit together. A dp option
 * without `--dp` is refused rather than ignored: `--clip 1 --noise-multiplier 1` alone would otherwise build
 * a plan without any privacy. The rules the server checks (docs/server.md) are checked here too, so that
 * the message names the flag instead of a pointer into the plan.
 */
export function checkDpOptions(o: DpOptions, schedule: ScheduleOptions): void {
  const given = (k: keyof DpOptions) => o[k] !== undefined && o[k] !== false;
  if (!o.dp) {
    const stray = [...DP_ONLY, ...ADAPTIVE_ONLY].find(given);
    if (stray) throw optionError(stray, 'only with --dp');
    return;
  }
  if (!o.adaptiveClip) {
    const stray = ADAPTIVE_ONLY.find(given);
    if (stray) throw optionError(stray, 'only with --adaptive-clip');
  }
  if (o.clip === undefined)
    throw optionError('clip', "--dp needs the L2 clip norm (with --adaptive-clip, the first round's)");
  if (o.noiseMultiplier === undefined)
    throw optionError('noiseMultiplier', '--dp needs the noise multiplier z (noise z x clip on the sum)');
  if (o.noiseMultiplier > 0 && o.targetEpsilon === undefined)
    throw optionError('targetEpsilon', '--dp needs the privacy budget: the epsilon the plan may spend');
  if (o.noiseMultiplier === 0 && o.targetEpsilon !== undefined)
    throw optionError(
      'targetEpsilon',
      'with --noise-multiplier 0 the plan adds no noise and spends an infinite epsilon, so no target holds; leave --target-epsilon out (the server then only shows the spending)',
    );
  if (o.adaptiveClip && o.noiseMultiplier > 0) {
    const countStddev =
      o.clippedCountStddev ?? ADAPTIVE_DEFAULTS.countStddevPerClient * schedule.targetClients;
    // The record's noise takes what is left of z after the count's share: z'^-2 = z^-2 - (2 stddev)^-2.
    if (o.noiseMultiplier >= 2 * countStddev)
      throw optionError(
        'noiseMultiplier',
        `with --adaptive-clip it must be below 2 x --clipped-count-stddev (${countStddev}${o.clippedCountStddev === undefined ? `, ${ADAPTIVE_DEFAULTS.countStddevPerClient} x --target-clients` : ''}), that is below ${2 * countStddev}`,
      );
  }
  if (o.accounting === 'subsampled') {
    if (o.populationSize === undefined)
      throw optionError('populationSize', '--accounting subsampled needs the number of devices');
    if (o.populationSize < schedule.targetClients)
      throw optionError(
        'populationSize',
        `${o.populationSize} devices is fewer than --target-clients ${schedule.targetClients}`,
      );
  } else if (o.populationSize !== undefined) {
    throw optionError('populationSize', 'only with --accounting subsampled');
  }
}

/** Where a plan keeps what its dp section names. */
export interface DpPaths {
  readonly record: string;
  /** The adaptive-clipping indicator in U and A. */
  readonly indicator: string;
  readonly clientsCount: string;
  readonly clipBroadcast: string;
}

/**
 * The `dp` section of checked dp options. Adaptive clipping's parameters not given are left out, so that the
 * server's defaults (TFF's `gaussian_adaptive`) apply and the plan says which were chosen.
 */
export function dpSection(
  o: DpOptions,
  schedule: ScheduleOptions,
  paths: DpPaths,
  /** A record that travels in a secure sum: which, and its integer units per unit. */
  secure?: { readonly sum: NonNullable<DifferentialPrivacy['secure_sum']>; readonly scale: number },
): DifferentialPrivacy {
  const clip = o.clip!;
  const adaptive = {
    initial_norm: clip,
    ...(o.targetQuantile !== undefined ? { target_quantile: o.targetQuantile } : {}),
    ...(o.clipLearningRate !== undefined ? { learning_rate: o.clipLearningRate } : {}),
    ...(o.clippedCountStddev !== undefined ? { clipped_count_stddev: o.clippedCountStddev } : {}),
  };
  return {
    record: paths.record,
    ...(secure ? { secure_sum: secure.sum, scale: secure.scale } : {}),
    clip: o.adaptiveClip ? { adaptive } : { norm: clip },
    ...(o.adaptiveClip ? { indicator: paths.indicator } : {}),
    clients_count: paths.clientsCount,
    // A secure change is clipped by clients to the fixed clip the plan encodes with: no broadcast clip.
    ...(secure ? {} : { clip_broadcast: paths.clipBroadcast }),
    noise_multiplier: o.noiseMultiplier!,
    clients_per_round: schedule.targetClients,
    target: {
      ...(o.targetEpsilon !== undefined ? { epsilon: o.targetEpsilon } : {}),
      delta: o.targetDelta ?? DEFAULT_TARGET_DELTA,
    },
    accounting: o.accounting ?? 'no-amplification',
    ...(o.populationSize !== undefined ? { population_size: o.populationSize } : {}),
  };
}

/**
 * Throws AppError BAD_REQUEST naming `--target-epsilon` when the plan's first round already spends more than
 * its target (the server refuses such a plan at submission); otherwise returns how many of its rounds the
 * target covers, for the plan's description.
 */
export function roundsWithinBudget(plan: Plan): number {
  const dp = dpOf(checkPlan(plan));
  if (!dp) throw new Error(`plan ${plan.name} has no dp section`);
  try {
    checkFirstRound(dp);
  } catch (e) {
    if (!(e instanceof AppError) || e.code !== 'PLAN_OUT_OF_BOUNDS') throw e;
    throw optionError(
      'targetEpsilon',
      `${e.details?.[0]?.message ?? e.message}; raise --target-epsilon or --noise-multiplier`,
    );
  }
  const rounds = plan.schedule.rounds;
  if (dp.target.epsilon === undefined) return rounds;
  return stepsWithin(
    dp.target.epsilon,
    { samplingRate: dp.samplingRate, noiseMultiplier: dp.noiseMultiplier, delta: dp.target.delta },
    rounds,
  );
}

/** One sentence for a plan's description: what the server does to the records, and the privacy target. */
export function dpDescription(o: DpOptions, roundsWithin: number, rounds: number, secure = false): string {
  const clip = o.adaptiveClip
    ? `an adaptive L2 clip (from ${o.clip}, towards the ${o.targetQuantile ?? ADAPTIVE_DEFAULTS.targetQuantile} quantile of the norms)`
    : `L2 norm ${o.clip}`;
  const delta = o.targetDelta ?? DEFAULT_TARGET_DELTA;
  const accounting = o.accounting ?? 'no-amplification';
  const target =
    o.targetEpsilon === undefined
      ? `no epsilon target (spending tracked at delta ${delta}, ${accounting})`
      : `target epsilon ${o.targetEpsilon} at delta ${delta} (${accounting}), which covers ${roundsWithin} of ${rounds} rounds`;
  if (secure)
    return `Central DP on a secure sum: each client clips its model change to ${clip} and sends it through secure_sum_bitwidth; the server adds Gaussian noise (z = ${o.noiseMultiplier}) to the unmasked sum; ${target}.`;
  return `Central DP: the server clips each client's model change to ${clip} and adds Gaussian noise (z = ${o.noiseMultiplier}) to their sum; ${target}.`;
}
