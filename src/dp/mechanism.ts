/**
 * The server's side of a plan's `dp` section (docs/server.md, "Differential privacy"): the clip every plain
 * upload gets, the sums the server keeps of the clipped records whatever the plan's own accumulate and merge
 * do, and the noise added to them before `report`, with adaptive clipping's next clip. The accountant
 * (src/dp/accountant.ts) charges the rounds.
 */
import * as tf from '@tensorflow/tfjs';
import { readTypedBundle, writeBundle } from '../codec';
import { tensorLeaves } from '../compute/types';
import { mapTensors } from '../compute/interpreter';
import { tensorsOf, type Value } from '../compute/value';
import { SecureSum } from '../aggregation/secure-sum';
import type { DpSetting, SecureRecord } from '../plan/dp-check';
import type { FormTypes } from '../plan/form-types';
import type { ResolvedBounds } from '../plan/update-bounds-check';
import { gaussianNoise } from './noise';

/** The indicator a client sends: +0.5 when its record's norm was at most the clip, -0.5 otherwise. */
export const INDICATOR_BOUND = 0.5;

/**
 * The bounds the server puts on one plain upload's U for a round clipped at `clip`: the record's tensors,
 * taken together as one vector, are scaled down to L2 norm `clip`, and the indicator is clipped to
 * [-0.5, 0.5], so that one client moves the record sum by at most `clip` and the indicator sum by at most 0.5,
 * the sensitivities the noise is calibrated to.
 */
export function dpBounds(dp: DpSetting, U: FormTypes['U'], clip: number): ResolvedBounds {
  const leaves = tensorLeaves(U).map((l) => ({ path: l.path.join('/'), dtype: l.type.dtype }));
  return {
    leaves,
    norms: [{ pointer: '/dp/clip', paths: ['record'], leaves: dp.recordU, maxNorm: clip, mode: 'clip' }],
    ranges:
      dp.indicatorU === undefined
        ? []
        : [
            {
              pointer: '/dp/indicator',
              path: leaves[dp.indicatorU]!.path,
              leaves: [dp.indicatorU],
              min: -INDICATOR_BOUND,
              max: INDICATOR_BOUND,
              mode: 'clip',
            },
          ],
  };
}

/**
 * A copy of `v` (a struct of tensors, `tensorLeaves` order) whose leaf k is `replace(k, t)` where that gives a
 * tensor, else a clone of t; the caller owns the copy and still owns `v`.
 */
export function withLeaves(v: Value, replace: (k: number, t: tf.Tensor) => tf.Tensor | undefined): Value {
  let k = 0;
  return mapTensors(v, (t) => replace(k++, t) ?? tf.clone(t));
}

/** The leaves of A the server owns: A's index of each, and U's index of its source (none for the count). */
function ownedLeaves(dp: DpSetting): { a: number; u?: number }[] {
  return [
    ...dp.recordA.map((a, i) => ({ a, u: dp.recordU[i]! })),
    ...(dp.indicatorA === undefined ? [] : [{ a: dp.indicatorA, u: dp.indicatorU! }]),
    ...(dp.clientsA === undefined ? [] : [{ a: dp.clientsA }]),
  ];
}

/**
 * `zero`'s accumulator with the server's leaves set to zero. Together with `accumulated`, the server's leaves
 * of every partial are the sums the server computed of the clipped uploads, whatever the plan's
 * zero/accumulate/merge put there: a plan cannot scale a record after the server clipped it.
 */
export function zeroed(dp: DpSetting, acc: Value): Value {
  const owned = new Map(ownedLeaves(dp).map((o) => [o.a, o]));
  return withLeaves(acc, (k, t) => (owned.has(k) ? tf.zerosLike(t) : undefined));
}

/** `next` (accumulate's result on `prev` and U) with the server's leaves set to prev's plus U's, or +1 for the count. */
export function accumulated(dp: DpSetting, next: Value, prev: Value, U: Value): Value {
  const before = tensorsOf(prev);
  const upload = tensorsOf(U);
  const owned = new Map(ownedLeaves(dp).map((o) => [o.a, o]));
  return withLeaves(next, (k) => {
    const o = owned.get(k);
    if (!o) return undefined;
    return o.u === undefined ? tf.add(before[k]!, tf.scalar(1, 'int32')) : tf.add(before[k]!, upload[o.u]!);
  });
}

/** The server's sums of a round (float64), taken from the partials before `merge` consumes them. */
export function serverSums(dp: DpSetting, partials: readonly Value[]): Float64Array[] {
  const owned = ownedLeaves(dp);
  const sums = owned.map(() => undefined as Float64Array | undefined);
  for (const p of partials) {
    const leaves = tensorsOf(p);
    owned.forEach((o, i) => {
      const data = leaves[o.a]!.dataSync();
      const s = (sums[i] ??= new Float64Array(data.length));
      for (let j = 0; j < data.length; j++) s[j]! += data[j]!;
    });
  }
  return sums.map((s) => s ?? new Float64Array(0));
}

/** What the noise did to a round, for its record. */
export interface DpRoundResult {
  /** The clip the round's records were clipped to. */
  readonly clip: number;
  /** The clip of the next round (the same, unless adaptive). */
  readonly nextClip: number;
  /** Adaptive clipping: the noisy fraction of clients whose record's norm was at most the clip. */
  readonly unclippedFraction?: number;
}

/**
 * The merged accumulator with the server's leaves set to its own sums plus noise: N(0, (z' clip)^2) per
 * coordinate of the record, N(0, countStddev^2) on the indicator sum, and the exact client count. Returns it
 * (the caller owns it and still owns `merged`) and the next clip: with adaptive clipping, clip x exp(-lr x
 * (b - target quantile)), b the noisy indicator mean shifted back by 0.5 and clamped to [0, 1] (Andrew et al.,
 * as TFF's QuantileEstimatorQuery computes it, over the expected clients per round).
 */
export function noisyAggregate(
  dp: DpSetting,
  merged: Value,
  sums: readonly Float64Array[],
  clients: number,
  clip: number,
): { acc: Value; result: DpRoundResult } {
  const owned = ownedLeaves(dp);
  const byLeaf = new Map(owned.map((o, i) => [o.a, i]));
  const recordStd = dp.recordNoiseMultiplier * clip;
  let indicatorSum: number | undefined;
  const acc = withLeaves(merged, (k, t) => {
    const i = byLeaf.get(k);
    if (i === undefined) return undefined;
    const o = owned[i]!;
    if (o.u === undefined) return tf.scalar(clients, 'int32');
    const sum = sums[i]!;
    const isIndicator = k === dp.indicatorA;
    const noise = gaussianNoise(sum.length, isIndicator ? dp.adaptive!.countStddev : recordStd);
    const out = new Float32Array(sum.length);
    for (let j = 0; j < sum.length; j++) out[j] = sum[j]! + noise[j]!;
    if (isIndicator) indicatorSum = out[0]!;
    return tf.tensor(out, t.shape, 'float32');
  });
  if (!dp.adaptive || indicatorSum === undefined) return { acc, result: { clip, nextClip: clip } };
  const b = Math.min(1, Math.max(0, indicatorSum / dp.clientsPerRound + INDICATOR_BOUND));
  const nextClip = clip * Math.exp(-dp.adaptive.learningRate * (b - dp.adaptive.targetQuantile));
  return { acc, result: { clip, nextClip, unclippedFraction: b } };
}

/**
 * The broadcast with the round's clip written into the float32 scalar the plan's `clip_broadcast` names, so
 * that clients clip to the clip the server enforces; the bytes unchanged when the plan names none.
 */
export function broadcastWithClip(
  dp: DpSetting,
  C: FormTypes['C'],
  broadcast: Uint8Array,
  clip: number,
): Uint8Array {
  if (dp.clipBroadcast === undefined) return broadcast;
  const { tensors, metadata } = readTypedBundle(broadcast, C, { requireFinite: false });
  const k = dp.clipBroadcast;
  const out = tensors.map((t, i) => (i === k ? { ...t, data: Float32Array.of(clip) } : t));
  return writeBundle(out, Object.keys(metadata).length > 0 ? metadata : undefined);
}

/** The local runner's `broadcastWithClip`: a copy of the broadcast value C with the clip written in. */
export function broadcastClip(dp: DpSetting, C: Value, clip: number): Value {
  if (dp.clipBroadcast === undefined) return C;
  return withLeaves(C, (k) => (k === dp.clipBroadcast ? tf.scalar(clip, 'float32') : undefined));
}

/** The largest int32: a bitwidth or max_input sum past it cannot reach `update`. */
const INT32_MAX = 2 ** 31 - 1;

/**
 * The standard deviation, in the secure sum's integer units, of the noise on a secure record's sum: z times
 * the largest change one client can make to it, its clip in units (clip x scale) plus what rounding to the
 * integer grid can add to a clipped record's length (sqrt(coordinates) / 2).
 */
export function secureNoiseStd(secure: SecureRecord, noiseMultiplier: number, clip: number): number {
  return noiseMultiplier * (clip * secure.scale + Math.sqrt(secure.coordinates) / 2);
}

/**
 * A dp plan's secure sum with a record (unmasked, or summed in the clear) after the noise: each coordinate
 * of the record plus a rounded N(0, secureNoiseStd^2), reduced modulo the modulus for a modular sum and
 * kept within [0, 2^31 - 1] otherwise (post-processing of the noisy sum, which costs no privacy), and the
 * client count set to the count of the aggregate.
 */
export function noisySecureSum(dp: DpSetting, sum: SecureSum, clients: number, clip: number): SecureSum {
  const secure = dp.secure!;
  const std = secureNoiseStd(secure, dp.noiseMultiplier, clip);
  const params = sum.parameters;
  const arrays = sum.partialSums().map((s) => Float64Array.from(s));
  for (const k of secure.record) {
    const values = arrays[k]!;
    const noise = gaussianNoise(values.length, std);
    for (let j = 0; j < values.length; j++) {
      const x = values[j]! + Math.round(noise[j]!);
      values[j] =
        secure.kind === 'modulus'
          ? ((x % params[k]!) + params[k]!) % params[k]!
          : Math.min(INT32_MAX, Math.max(0, x));
    }
  }
  if (secure.clients !== undefined) arrays[secure.clients]!.fill(clients);
  return SecureSum.restore(sum.kind, params, arrays, sum.clients);
}
