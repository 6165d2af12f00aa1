/**
 * Checks a plan's `dp` section against its form types and resolves it into what the server applies
 * (docs/server.md, "Differential privacy"). The rules make a plan's privacy auditable from its JSON: U holds
 * only the record and the adaptive-clipping indicator, A only those (at the same paths, with the same types)
 * and an optional client count, and V is empty, so that everything `report` and `update` see, and so
 * everything released, derives from sums the server clipped and noised, and from the client count.
 */
import { formatType, tensorLeaves, type TensorLeaf } from '../compute/types';
import type { ErrorDetail } from '../errors';
import type { SecureSumKind } from '../aggregation/secure-sum';
import type { DifferentialPrivacy, Plan } from '../generated/plan';

/** TFF's secure sums in the order of V1, V2, V3. */
const SECURE_SUM_KINDS: readonly SecureSumKind[] = ['bitwidth', 'max_input', 'modulus'];
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

/** A record that travels in a secure sum (`dp.secure_sum`), as integers round(x scale). */
export interface SecureRecord {
  readonly kind: SecureSumKind;
  /** Which of V1, V2, V3. */
  readonly index: 0 | 1 | 2;
  /** Indices of the record's tensors, and of the client count, in `tensorLeaves(V[index])`. */
  readonly record: readonly number[];
  readonly clients?: number;
  readonly scale: number;
  /** The record's coordinates: rounding lengthens a clipped record by up to sqrt(coordinates) / 2 units. */
  readonly coordinates: number;
}

/** A plan's `dp` section resolved against its types, defaults applied. */
export interface DpSetting {
  /** A record in a secure sum; then recordU and recordA are empty. */
  readonly secure?: SecureRecord;
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

  const secure = dp.secure_sum === undefined ? undefined : secureRecord(dp, types, fail);
  const recordU = secure ? [] : leavesAt(U, dp.record);
  const recordA = secure ? [] : leavesAt(A, dp.record);
  if (dp.secure_sum !== undefined) {
    if (U.length > 0)
      fail(
        '/secure_sum',
        `with a secure record U must be empty (the server would see it per client); it has ${U.map(where).join(', ')}`,
      );
  } else if (recordU.length === 0)
    fail('/record', `"${dp.record}" names no tensor of U ${formatType(types.U)}`);
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
  if (dp.indicator !== undefined && dp.secure_sum === undefined) {
    if (!dp.clip.adaptive) fail('/indicator', 'an indicator is only for adaptive clipping (clip.adaptive)');
    indicatorU = scalarAt(U, dp.indicator, 'float32', 'U', '/indicator', fail);
    indicatorA = scalarAt(A, dp.indicator, 'float32', 'A', '/indicator', fail);
    if (indicatorU !== undefined && recordU.includes(indicatorU))
      fail('/indicator', `the indicator "${dp.indicator}" is inside the record "${dp.record}"`);
  } else if (dp.clip.adaptive && dp.secure_sum === undefined) {
    fail('/indicator', 'adaptive clipping needs an indicator: the path in U and A of its float32 scalar');
  }
  const clientsA =
    dp.clients_count === undefined || dp.secure_sum !== undefined
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
  if (dp.secure_sum === undefined) {
    const inV = types.V.flatMap((v) => tensorLeaves(v));
    if (inV.length > 0)
      fail(
        '/secure_sum',
        `the record is in U, so the secure sums would be released without noise; a plan with dp has none unless its record is in one (V has ${inV.length} tensors)`,
      );
  } else if (dp.clip.adaptive || dp.indicator !== undefined) {
    fail(
      '/clip',
      "adaptive clipping needs the record in U: the server cannot see a secure record's indicator",
    );
  }

  if (dp.scale !== undefined && dp.secure_sum === undefined)
    fail('/scale', 'scale is only for a record in a secure sum (secure_sum)');
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
      ...(secure ? { secure } : {}),
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

/** Resolves a record in a secure sum: its tensors (int32), the count, and that nothing else is in V. */
function secureRecord(
  dp: DifferentialPrivacy,
  types: FormTypes,
  fail: (path: string, message: string) => void,
): SecureRecord | undefined {
  const kind = dp.secure_sum!;
  const index = SECURE_SUM_KINDS.indexOf(kind) as 0 | 1 | 2;
  const V = tensorLeaves(types.V[index]!);
  const name = `V${index + 1} (${kind})`;
  const record = leavesAt(V, dp.record);
  let ok = true;
  if (record.length === 0) {
    fail('/record', `"${dp.record}" names no tensor of ${name} ${formatType(types.V[index]!)}`);
    ok = false;
  } else if (record.some((k) => V[k]!.type.dtype !== 'int32' || V[k]!.type.shape.some((d) => d === null))) {
    fail(
      '/record',
      `a secure record is int32 tensors of known shape; ${name} at "${dp.record}" has ${leafList(V, record)}`,
    );
    ok = false;
  }
  const clients =
    dp.clients_count === undefined
      ? undefined
      : scalarAt(V, dp.clients_count, 'int32', name, '/clients_count', fail);
  if (dp.clients_count !== undefined && clients === undefined) ok = false;
  const used = new Set([...record, ...(clients === undefined ? [] : [clients])]);
  const extra = V.filter((_, k) => !used.has(k));
  if (record.length > 0 && extra.length > 0) {
    fail(
      '/record',
      `${name} may hold only the record and the client count; it also has ${extra.map(where).join(', ')}, which would be released without noise`,
    );
    ok = false;
  }
  types.V.forEach((v, k) => {
    const leaves = tensorLeaves(v);
    if (k !== index && leaves.length > 0) {
      fail(
        '/secure_sum',
        `only ${name} may hold tensors; V${k + 1} has ${leaves.map(where).join(', ')}, which would be released without noise`,
      );
      ok = false;
    }
  });
  if (dp.scale === undefined) {
    fail('/scale', 'a secure record needs scale: the integer units per unit of the record');
    ok = false;
  }
  if (!ok) return undefined;
  const coordinates = record.reduce(
    (n, k) => n + V[k]!.type.shape.reduce<number>((a, d) => a * (d ?? 0), 1),
    0,
  );
  return {
    kind,
    index,
    record,
    ...(clients === undefined ? {} : { clients }),
    scale: dp.scale!,
    coordinates,
  };
}

function scalarAt(
  leaves: readonly TensorLeaf[],
  path: string,
  dtype: 'float32' | 'int32',
  what: string,
  pointer: string,
  fail: (path: string, message: string) => void,
): number | undefined {
  const found = leavesAt(leaves, path);
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
