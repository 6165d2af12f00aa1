/**
 * Checks a plan's `dp` section against its form types and resolves it into what the server applies
 * (docs/server.md, "Differential privacy"). The rules make a plan's privacy auditable from its JSON: U holds
 * only the record and the adaptive-clipping indicator, A only those (at the same paths, with the same types)
 * and an optional client count, and V is empty, so that everything `report` and `update` see, and so
 * everything released, derives from sums the server clipped and noised, and from the client count.
 */
import { formatType, tensorLeaves, type TensorLeaf, type TffType } from '../compute/types';
import type { ErrorDetail } from '../errors';
import type { DifferentialPrivacy, Plan } from '../generated/plan';
import type { FormTypes } from './form-types';
import { leavesAt } from './update-bounds-check';

/** TFF's `gaussian_adaptive` defaults (tff.aggregators.DifferentiallyPrivateFactory). */
export const ADAPTIVE_DEFAULTS = {
  initialNorm: 0.1,
  targetQuantile: 0.5,
  learningRate: 0.2,
  /** Times clients_per_round. */
  countStddevPerClient: 0.05,
} as const;

/** Adaptive clipping's parameters, defaults applied. */
export interface AdaptiveClip {
  readonly initialNorm: number;
  readonly targetQuantile: number;
  readonly learningRate: number;
  /** Standard deviation of the noise on the sum of shifted indicators (in clients). */
  readonly countStddev: number;
}

/** A plan's `dp` section resolved against its types, defaults applied. */
export interface DpSetting {
  /** Indices of the record's tensors in `tensorLeaves(U)`, and of the same tensors in `tensorLeaves(A)`. */
  readonly recordU: readonly number[];
  readonly recordA: readonly number[];
  /** The indicator's index in U and in A (adaptive clipping only). */
  readonly indicatorU?: number;
  readonly indicatorA?: number;
  /** The client count's index in A. */
  readonly clientsA?: number;
  /** The index in `tensorLeaves(C)` of the broadcast scalar that carries the round's clip. */
  readonly clipBroadcast?: number;
  /** z, which the accountant charges. */
  readonly noiseMultiplier: number;
  /**
   * The multiplier of the noise on the record sum: z itself with a fixed clip; with adaptive clipping z' such
   * that z'^-2 + (2 countStddev)^-2 = z^-2, so that both noisy sums together spend what one of multiplier z
   * does (Andrew et al., theorem 1).
   */
  readonly recordNoiseMultiplier: number;
  readonly clientsPerRound: number;
  /** The first round's clip norm. */
  readonly initialClip: number;
  readonly adaptive?: AdaptiveClip;
  readonly accounting: 'no-amplification' | 'subsampled';
  /** The sampling rate the accountant charges each round at: 1 without amplification. */
  readonly samplingRate: number;
  /** Without an epsilon, spending is tracked, never enforced. */
  readonly target: { readonly epsilon?: number; readonly delta: number };
}

function leafIndex(leaves: readonly TensorLeaf[], path: string): number[] {
  return leavesAt(leaves, path);
}

const where = (leaf: TensorLeaf): string => leaf.path.join('/') || '(the whole value)';

/**
 * Resolves `dp` against the form types; `errors` lists every problem with a JSON pointer, and `setting` is
 * set only when there is none.
 */
export function resolveDp(plan: Plan, types: FormTypes): { setting?: DpSetting; errors: ErrorDetail[] } {
  const dp = plan.dp;
  if (!dp) return { errors: [] };
  const errors: ErrorDetail[] = [];
  const fail = (path: string, message: string): void => void errors.push({ path: `/dp${path}`, message });
  let U: TensorLeaf[], A: TensorLeaf[], C: TensorLeaf[];
  try {
    [U, A, C] = [tensorLeaves(types.U), tensorLeaves(types.A), tensorLeaves(types.C)];
  } catch {
    fail('', 'a plan with dp needs U, A and the broadcast to be tensors or structs of tensors');
    return { errors };
  }

  const recordU = leafIndex(U, dp.record);
  const recordA = leafIndex(A, dp.record);
  if (recordU.length === 0) fail('/record', `"${dp.record}" names no tensor of U ${formatType(types.U)}`);
  else if (recordU.some((k) => U[k]!.type.dtype !== 'float32'))
    fail('/record', `the record must be float32 tensors; U at "${dp.record}" has ${dtypes(U, recordU)}`);
  if (recordU.length > 0 && !sameLeaves(U, recordU, A, recordA)) {
    fail(
      '/record',
      `A must hold the record's tensors at "${dp.record}" with the same types (the server puts the noisy sum there); U has ${leafList(U, recordU)}, A has ${leafList(A, recordA) || 'nothing'}`,
    );
  }

  let indicatorU: number | undefined;
  let indicatorA: number | undefined;
  if (dp.indicator !== undefined) {
    if (!dp.clip.adaptive) fail('/indicator', 'an indicator is only for adaptive clipping (clip.adaptive)');
    indicatorU = scalarAt(U, dp.indicator, 'float32', 'U', '/indicator', fail);
    indicatorA = scalarAt(A, dp.indicator, 'float32', 'A', '/indicator', fail);
    if (indicatorU !== undefined && recordU.includes(indicatorU))
      fail('/indicator', `the indicator "${dp.indicator}" is inside the record "${dp.record}"`);
  } else if (dp.clip.adaptive) {
    fail('/indicator', 'adaptive clipping needs an indicator: the path in U and A of its float32 scalar');
  }
  const clientsA =
    dp.clients_count === undefined
      ? undefined
      : scalarAt(A, dp.clients_count, 'int32', 'A', '/clients_count', fail);
  const clipBroadcast =
    dp.clip_broadcast === undefined
      ? undefined
      : scalarAt(C, dp.clip_broadcast, 'float32', 'the broadcast', '/clip_broadcast', fail);
  if (dp.clip.adaptive && dp.clip_broadcast === undefined)
    fail('/clip_broadcast', "adaptive clipping needs clip_broadcast: clients must learn each round's clip");

  // Nothing else may reach report: any other tensor of U or A would be released without noise.
  const usedU = new Set([...recordU, ...(indicatorU === undefined ? [] : [indicatorU])]);
  const usedA = new Set([...recordA, ...[indicatorA, clientsA].filter((k): k is number => k !== undefined)]);
  const extraU = U.filter((_, k) => !usedU.has(k));
  const extraA = A.filter((_, k) => !usedA.has(k));
  if (recordU.length > 0 && extraU.length > 0)
    fail(
      '/record',
      `U may hold only the record and the indicator; it also has ${extraU.map(where).join(', ')}`,
    );
  if (recordA.length > 0 && extraA.length > 0)
    fail(
      '/record',
      `A may hold only the record, the indicator and the client count; it also has ${extraA.map(where).join(', ')}, which report would see without noise`,
    );
  const secure = types.V.flatMap((v) => tensorLeaves(v));
  if (secure.length > 0)
    fail(
      '',
      `secure sums are not noised by the server; a plan with dp must have none (V has ${secure.length} tensors)`,
    );

  if (!!dp.clip.norm === !!dp.clip.adaptive) fail('/clip', 'clip needs exactly one of norm and adaptive');
  const clientsPerRound = dp.clients_per_round ?? plan.schedule.target_clients;
  const adaptive = dp.clip.adaptive
    ? {
        initialNorm: dp.clip.adaptive.initial_norm ?? ADAPTIVE_DEFAULTS.initialNorm,
        targetQuantile: dp.clip.adaptive.target_quantile ?? ADAPTIVE_DEFAULTS.targetQuantile,
        learningRate: dp.clip.adaptive.learning_rate ?? ADAPTIVE_DEFAULTS.learningRate,
        countStddev:
          dp.clip.adaptive.clipped_count_stddev ?? ADAPTIVE_DEFAULTS.countStddevPerClient * clientsPerRound,
      }
    : undefined;
  const z = dp.noise_multiplier;
  let recordNoiseMultiplier = z;
  if (adaptive && z > 0) {
    const countMultiplier = 2 * adaptive.countStddev;
    if (z >= countMultiplier) {
      fail(
        '/noise_multiplier',
        `with adaptive clipping the noise multiplier must be below 2 x clipped_count_stddev (${countMultiplier}); it is ${z}`,
      );
    } else recordNoiseMultiplier = (z ** -2 - countMultiplier ** -2) ** -0.5;
  }

  const accounting = dp.accounting ?? 'no-amplification';
  let samplingRate = 1;
  if (accounting === 'subsampled') {
    if (dp.population_size === undefined)
      fail('/population_size', 'subsampled accounting needs population_size (the devices in the population)');
    else if (dp.population_size < clientsPerRound)
      fail(
        '/population_size',
        `population_size ${dp.population_size} is below clients_per_round ${clientsPerRound}`,
      );
    else samplingRate = clientsPerRound / dp.population_size;
  } else if (dp.population_size !== undefined) {
    fail('/population_size', 'population_size is only used by subsampled accounting');
  }

  if (errors.length > 0) return { errors };
  return {
    errors,
    setting: {
      recordU,
      recordA,
      ...(indicatorU === undefined ? {} : { indicatorU, indicatorA: indicatorA! }),
      ...(clientsA === undefined ? {} : { clientsA }),
      ...(clipBroadcast === undefined ? {} : { clipBroadcast }),
      noiseMultiplier: z,
      recordNoiseMultiplier,
      clientsPerRound,
      initialClip: adaptive ? adaptive.initialNorm : dp.clip.norm!,
      ...(adaptive ? { adaptive } : {}),
      accounting,
      samplingRate,
      target: dp.target,
    },
  };
}

const settings = new WeakMap<Plan, DpSetting | null>();

/** A checked plan's resolved dp setting (once per plan object), or undefined when it has no dp section. */
export function dpOf(checked: { readonly plan: Plan; readonly types: FormTypes }): DpSetting | undefined {
  let s = settings.get(checked.plan);
  if (s === undefined) {
    // checkPlan has already refused a dp section that does not resolve.
    s = checked.plan.dp ? (resolveDp(checked.plan, checked.types).setting ?? null) : null;
    settings.set(checked.plan, s);
  }
  return s ?? undefined;
}

function scalarAt(
  leaves: readonly TensorLeaf[],
  path: string,
  dtype: 'float32' | 'int32',
  what: string,
  pointer: string,
  fail: (path: string, message: string) => void,
): number | undefined {
  const found = leafIndex(leaves, path);
  const leaf = found.length === 1 ? leaves[found[0]!]! : undefined;
  if (!leaf || leaf.type.dtype !== dtype || leaf.type.shape.length !== 0) {
    fail(
      pointer,
      `"${path}" must name a ${dtype} scalar in ${what}; it names ${leafList(leaves, found) || 'nothing'}`,
    );
    return undefined;
  }
  return found[0];
}

function sameLeaves(U: readonly TensorLeaf[], u: number[], A: readonly TensorLeaf[], a: number[]): boolean {
  return (
    u.length === a.length &&
    u.every((k, i) => {
      const [x, y] = [U[k]!, A[a[i]!]!];
      return (
        x.path.join('/') === y.path.join('/') &&
        x.type.dtype === y.type.dtype &&
        x.type.shape.length === y.type.shape.length &&
        x.type.shape.every((d, j) => d !== null && d === y.type.shape[j])
      );
    })
  );
}

function leafList(leaves: readonly TensorLeaf[], at: readonly number[]): string {
  return at.map((k) => `${where(leaves[k]!)}: ${formatType(leaves[k]!.type)}`).join(', ');
}

function dtypes(leaves: readonly TensorLeaf[], at: readonly number[]): string {
  return [...new Set(at.map((k) => leaves[k]!.type.dtype))].join(', ');
}

/** The problems of a plan's dp section, each with a JSON pointer (checkPlan's hook). */
export function dpErrors(plan: Plan, types: FormTypes): ErrorDetail[] {
  return resolveDp(plan, types).errors;
}

export type { DifferentialPrivacy };
