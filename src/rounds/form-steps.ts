import * as tf from '@tensorflow/tfjs';
import { SecureSum, SECURE_SUM_SLOTS, type SecureSumKind } from '../aggregation/secure-sum';
import type { Interpreter } from '../compute/interpreter';
import { mapTensors } from '../compute/interpreter';
import { tensorLeaves, type TffType } from '../compute/types';
import { disposeValue, isStruct, structValue, tensorsOf, type Value } from '../compute/value';
import { valueToJson, type JsonValue } from '../compute/value-json';
import type { Plan } from '../generated/plan';
import type { CheckedPlan } from '../plan/validate';

/**
 * The steps of a round that the local runner, the round engine and the aggregation workers share, so that
 * the server computes exactly what the reference local runner computes: the secure-sum parameters and
 * sums, `merge` over partials, and the `update` step.
 */

/** TFF's three secure sums, in the order of V1, V2, V3. */
export const SECURE_KINDS = ['bitwidth', 'max_input', 'modulus'] as const satisfies readonly SecureSumKind[];

/** A round's secure-sum parameters: one number per tensor of V1, V2, V3 (as stored in a round's info). */
export type SecureParams = { readonly [K in SecureSumKind]: number[] };

/** A SecAgg round's masking modulus of every tensor of V1, V2, V3 (src/secagg/masks.ts). */
export type MaskingModuli = { readonly [K in SecureSumKind]: readonly number[] };

/** An upload's tensors by part: U's, then V1's, V2's and V3's, each in `tensorLeaves` order. */
export interface UploadParts<T> {
  readonly U: readonly T[];
  readonly V: readonly [readonly T[], readonly T[], readonly T[]];
}

const uploadCounts = new WeakMap<TffType, readonly [number, number, number, number]>();

/**
 * Splits an upload bundle's tensors (of `uploadType`, `<U, V1, V2, V3>`, masked or not) into its parts: the
 * one rule by which the API checks an upload's secure sums and a worker folds it.
 */
export function uploadParts<T>(uploadType: TffType, tensors: readonly T[]): UploadParts<T> {
  let counts = uploadCounts.get(uploadType);
  if (!counts) {
    if (uploadType.kind !== 'struct' || uploadType.fields.length !== 4) {
      throw new Error('the upload type is not <U, V1, V2, V3>');
    }
    counts = uploadType.fields.map((f) => tensorLeaves(f.type).length) as unknown as [
      number,
      number,
      number,
      number,
    ];
    uploadCounts.set(uploadType, counts);
  }
  const [u, v1, v2, v3] = counts;
  if (tensors.length !== u + v1 + v2 + v3) {
    throw new Error(`${tensors.length} tensors for an upload type of ${u + v1 + v2 + v3}`);
  }
  return {
    U: tensors.slice(0, u),
    V: [tensors.slice(u, u + v1), tensors.slice(u + v1, u + v1 + v2), tensors.slice(u + v1 + v2)],
  };
}

/** Element counts of a type's tensors, in `tensorLeaves` order (shapes are static in V). */
export function leafSizes(type: TffType): number[] {
  return tensorLeaves(type).map((l) => l.type.shape.reduce<number>((a, d) => a * (d ?? 0), 1));
}

/** Runs one of the plan's form computations with the round number (which seeds random ops). */
export function runSlot(
  interpreter: Interpreter,
  plan: Plan,
  slot: keyof Plan['computations'],
  round: number,
  arg?: Value,
): Value {
  return interpreter.run(plan.computations[slot], arg, { round, label: slot });
}

/** `<a, b>`: the unnamed pair a form computation takes. */
export function pair(a: Value, b: Value): Value {
  return structValue([
    [undefined, a],
    [undefined, b],
  ]);
}

/**
 * Evaluates a secure-sum parameter computation into one number per tensor of V (`tensorLeaves` order); a
 * single scalar applies to every tensor.
 */
export function secureSumParams(
  interpreter: Interpreter,
  checked: CheckedPlan,
  kind: SecureSumKind,
  round: number,
): number[] {
  const V = checked.types.V[SECURE_KINDS.indexOf(kind)]!;
  const leaves = tensorLeaves(V);
  const value = runSlot(interpreter, checked.plan, SECURE_SUM_SLOTS[kind], round);
  try {
    if (leaves.length === 0) return [];
    const ts = tensorsOf(value);
    return ts.length === 1 && ts[0]!.rank === 0 && leaves.length !== 1
      ? leaves.map(() => ts[0]!.dataSync()[0]!)
      : ts.map((t) => t.dataSync()[0]!);
  } finally {
    disposeValue(value);
  }
}

/** All three kinds' parameters for a round. */
export function allSecureParams(interpreter: Interpreter, checked: CheckedPlan, round: number): SecureParams {
  const [bitwidth, max_input, modulus] = SECURE_KINDS.map((k) =>
    secureSumParams(interpreter, checked, k, round),
  );
  return { bitwidth: bitwidth!, max_input: max_input!, modulus: modulus! };
}

/**
 * Empty secure sums for V1, V2, V3 with the given parameters (which they check); masked sums modulo
 * `masking` when the round runs SecAgg.
 */
export function newSecureSums(
  checked: CheckedPlan,
  params: SecureParams,
  masking?: MaskingModuli,
): [SecureSum, SecureSum, SecureSum] {
  return SECURE_KINDS.map((kind, i) =>
    masking
      ? new SecureSum('masked', masking[kind], leafSizes(checked.types.V[i]!))
      : new SecureSum(kind, params[kind], leafSizes(checked.types.V[i]!)),
  ) as [SecureSum, SecureSum, SecureSum];
}

/** A secure sum's result as a value of V's type (int32 tensors); the caller disposes it. */
export function secureSumValue(sum: SecureSum, V: TffType): Value {
  const leaves = tensorLeaves(V);
  const arrays = sum.result();
  let i = 0;
  const build = (t: TffType): Value => {
    if (t.kind === 'struct')
      return {
        kind: 'struct',
        fields: t.fields.map((f) => ({ ...(f.name ? { name: f.name } : {}), value: build(f.type) })),
      };
    const leaf = leaves[i]!;
    return tf.tensor(arrays[i++]!, leaf.type.shape as number[], 'int32');
  };
  return build(V);
}

/** `merge` over accumulators, left to right; consumes (disposes) every input and returns the merged one. */
export function mergeAll(interpreter: Interpreter, plan: Plan, accs: readonly Value[], round: number): Value {
  return mergeWith(
    accs,
    (a, b) => runSlot(interpreter, plan, 'merge', round, pair(a, b)),
    () => runSlot(interpreter, plan, 'zero', round),
  );
}

/**
 * Accumulators merged left to right by `merge` (`zero()` when there are none), as every fold of the
 * MapReduce form merges its partials (rounds, and stateful programs' aggregations); consumes (disposes) every
 * input and returns the merged one.
 */
export function mergeWith(
  accs: readonly Value[],
  merge: (a: Value, b: Value) => Value,
  zero: () => Value,
): Value {
  if (accs.length === 0) return zero();
  let merged = accs[0]!;
  let k = 1;
  try {
    for (; k < accs.length; k++) {
      const next = merge(merged, accs[k]!);
      disposeValue(merged);
      disposeValue(accs[k]!);
      merged = next;
    }
  } catch (e) {
    disposeValue(merged);
    for (const other of accs.slice(k)) disposeValue(other);
    throw e;
  }
  return merged;
}

/**
 * The update step: `(S', X) = update(S, <R, V1sum, V2sum, V3sum>)`. Returns S' (a private copy the caller
 * owns) and X as JSON; S and R stay the caller's.
 */
export function updateStep(
  interpreter: Interpreter,
  checked: CheckedPlan,
  S: Value,
  R: Value,
  sums: readonly SecureSum[],
  round: number,
): { state: Value; output: JsonValue } {
  const owned: Value[] = [];
  try {
    for (let k = 0; k < 3; k++) owned.push(secureSumValue(sums[k]!, checked.types.V[k]!));
    const updated = runSlot(
      interpreter,
      checked.plan,
      'update',
      round,
      pair(S, structValue([[undefined, R], ...owned.map((v) => [undefined, v] as const)])),
    );
    owned.push(updated);
    if (!isStruct(updated)) throw new Error('update did not return a struct');
    const [S2, X] = [updated.fields[0]!.value, updated.fields[1]!.value];
    const output = valueToJson(X);
    // S' may share tensors with `updated`, which is disposed below: keep a private copy.
    return { state: mapTensors(S2, (t) => tf.clone(t)), output };
  } finally {
    for (const v of owned) disposeValue(v);
  }
}
