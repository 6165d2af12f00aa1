/**
 * A worker's partial aggregate as it is committed to Redis: the accumulator A, the three partial secure sums
 * and the number of uploads inside, in one safetensors bundle. Layout (names are bundle tensor names):
 *
 * - `A/<path>` (or `A` for a bare tensor): A's tensors, as `encodeBundle` names them under a field `A`;
 * - `V1/<i>`, `V2/<i>`, `V3/<i>`: tensor i of each secure sum as int32 `[2, n]`, row 0 the high and row 1
 *   the low 31 bits of the exact sum (sums are integers below 2^53, more than int32 or float32 hold);
 * - metadata `format` = `roundhouse.partial/v1`, `clients` = the number of uploads inside.
 */
import * as tf from '@tensorflow/tfjs';
import { readTypedBundle, tensorData, writeBundle, type BundleTensor } from '../codec';
import { structType, tensorLeaves, tensorType, type TffType } from '../compute/types';
import { tensorsOf, type Value } from '../compute/value';
import { AppError } from '../errors';
import type { FormTypes } from '../plan/validate';
import { SECURE_KINDS, leafSizes, type MaskingModuli, type SecureParams } from '../rounds/form-steps';
import { SecureSum } from './secure-sum';

/** The metadata `format` of a partial bundle. */
export const PARTIAL_FORMAT = 'roundhouse.partial/v1';

const SECURE_FIELDS = ['V1', 'V2', 'V3'] as const;
const HALF = 2 ** 31;

/** A decoded partial: the caller owns (and disposes) `acc`'s tensors. */
export interface PartialAggregate {
  readonly acc: Value;
  readonly sums: [SecureSum, SecureSum, SecureSum];
  readonly clients: number;
}

/** The bundle type of a plan's partials: `<A: A, V1: <int32[2,n]...>, V2: ..., V3: ...>`. */
export function partialType(types: Pick<FormTypes, 'A' | 'V'>): TffType {
  return structType([
    ['A', types.A],
    ...SECURE_FIELDS.map(
      (name, k) =>
        [
          name,
          structType(leafSizes(types.V[k]!).map((n) => [undefined, tensorType('int32', [2, n])] as const)),
        ] as const,
    ),
  ]);
}

/** Encodes a partial; `acc` must be a value of type A (checked), `sums` the partial secure sums of V1..V3. */
export function encodePartial(
  types: Pick<FormTypes, 'A' | 'V'>,
  acc: Value,
  sums: readonly SecureSum[],
  clients: number,
): Uint8Array {
  if (!Number.isInteger(clients) || clients < 0) throw new Error(`bad client count ${clients}`);
  const tensors: BundleTensor[] = [];
  const leaves = tensorLeaves(types.A);
  const values = tensorsOf(acc);
  if (leaves.length !== values.length) {
    throw new AppError(
      'BUNDLE_TYPE_MISMATCH',
      `the accumulator has ${values.length} tensors, A has ${leaves.length}`,
    );
  }
  leaves.forEach((leaf, i) => {
    const t = values[i]!;
    const fits =
      t.dtype === leaf.type.dtype &&
      t.rank === leaf.type.shape.length &&
      leaf.type.shape.every((d, j) => d === null || d === t.shape[j]);
    if (!fits) {
      throw new AppError(
        'BUNDLE_TYPE_MISMATCH',
        `accumulator tensor ${leaf.path.join('/') || '(root)'} is ${t.dtype}[${t.shape.join(',')}], A wants ${leaf.type.dtype}[${leaf.type.shape.join(',')}]`,
      );
    }
    tensors.push({
      name: ['A', ...leaf.path].join('/'),
      dtype: leaf.type.dtype,
      shape: t.shape,
      data: tensorData(t),
    });
  });
  SECURE_FIELDS.forEach((field, k) => {
    const sum = sums[k]!;
    if (sum.kind !== SECURE_KINDS[k] && sum.kind !== 'masked')
      throw new Error(`secure sum ${k} is ${sum.kind}, expected ${SECURE_KINDS[k]}`);
    sum.partialSums().forEach((s, i) => {
      const data = new Int32Array(2 * s.length);
      for (let j = 0; j < s.length; j++) {
        const x = s[j]!;
        if (!Number.isSafeInteger(x) || x < 0) throw new Error(`secure sum ${field}/${i}[${j}] is ${x}`);
        const hi = Math.floor(x / HALF);
        data[j] = hi;
        data[s.length + j] = x - hi * HALF;
      }
      tensors.push({ name: `${field}/${i}`, dtype: 'int32', shape: [2, s.length], data });
    });
  });
  return writeBundle(tensors, { format: PARTIAL_FORMAT, clients: String(clients) });
}

/**
 * Decodes a partial bundle written by `encodePartial` for the same plan; `params` are the round's secure-sum
 * parameters. Throws BUNDLE_* errors for a bundle of another shape.
 */
export function decodePartial(
  bytes: Uint8Array,
  types: Pick<FormTypes, 'A' | 'V'>,
  params: SecureParams,
  /** The round's masking moduli when it runs SecAgg: its sums are masked residues. */
  masking?: MaskingModuli,
): PartialAggregate {
  // An accumulator may legitimately hold ±Inf (say, a running max); partials are our own data.
  const { metadata, tensors } = readTypedBundle(bytes, partialType(types), { requireFinite: false });
  if (metadata.format !== PARTIAL_FORMAT) {
    throw new AppError(
      'BUNDLE_MALFORMED',
      `not a partial aggregate (format ${JSON.stringify(metadata.format)})`,
    );
  }
  const clients = Number(metadata.clients);
  if (!Number.isSafeInteger(clients) || clients < 0) {
    throw new AppError(
      'BUNDLE_MALFORMED',
      `partial aggregate has a bad client count ${JSON.stringify(metadata.clients)}`,
    );
  }
  const aCount = tensorLeaves(types.A).length;
  let next = aCount;
  const sums = SECURE_KINDS.map((kind, k) => {
    const arrays = leafSizes(types.V[k]!).map(() => {
      const packed = tensors[next++]!.data as Int32Array;
      const n = packed.length / 2;
      const out = new Float64Array(n);
      for (let j = 0; j < n; j++) out[j] = packed[j]! * HALF + packed[n + j]!;
      return out;
    });
    // A round running SecAgg holds masked residues, summed modulo each tensor's masking modulus.
    return masking
      ? SecureSum.restore('masked', masking[kind], arrays, clients)
      : SecureSum.restore(kind, params[kind], arrays, clients);
  }) as [SecureSum, SecureSum, SecureSum];
  const acc = valueFromTensors(types.A, tensors.slice(0, aCount));
  return { acc, sums, clients };
}

/**
 * Builds a value of `type` from bundle tensors in `tensorLeaves(type)` order (as `readTypedBundle` returns
 * them), copying the data into new tf tensors that the caller owns.
 */
export function valueFromTensors(type: TffType, tensors: readonly BundleTensor[]): Value {
  let next = 0;
  const build = (t: TffType): Value => {
    if (t.kind === 'struct')
      return {
        kind: 'struct',
        fields: t.fields.map((f) => ({ ...(f.name ? { name: f.name } : {}), value: build(f.type) })),
      };
    const b = tensors[next++];
    if (!b) throw new Error('fewer tensors than the type has leaves');
    // Copy: the data may view a buffer that is reused, and the CPU backend keeps the array it is given.
    return tf.tensor(b.data.slice(), [...b.shape], b.dtype);
  };
  const value = build(type);
  if (next !== tensors.length) throw new Error(`${tensors.length} tensors for a type of ${next} leaves`);
  return value;
}
