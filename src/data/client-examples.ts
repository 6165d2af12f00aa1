/**
 * One client's examples as flat typed arrays, one per tensor leaf of the plan's batch type, and the checks
 * that tie them to that type. This is the storage form of client data; `toBatches` turns it into the
 * sequence of batches a plan's `work` folds over.
 */
import { AppError, type ErrorDetail } from '../errors';
import { formatType, tensorLeaves, type Dtype, type TensorLeaf, type TffType } from '../compute/types';

/** Per-leaf example data: float32 → Float32Array, int32 → Int32Array, bool → Uint8Array of 0/1. */
export type ExampleData = Float32Array | Int32Array | Uint8Array;

/**
 * One client's examples: `leaves[i]` belongs to `tensorLeaves(element)[i]` and holds `count` examples of that
 * leaf's per-example shape (its shape without the leading batch dimension), row-major, back to back.
 */
export interface ClientExamples {
  readonly count: number;
  readonly leaves: readonly ExampleData[];
}

/** A leaf of a batch type as seen per example: its batch dimension removed. */
export interface ExampleLeaf {
  readonly path: readonly string[];
  readonly dtype: Dtype;
  /** The type's leading (batch) dimension: null, or a fixed batch size. */
  readonly batchDim: number | null;
  /** The shape of one example, without the batch dimension; every dimension known. */
  readonly exampleShape: readonly number[];
  /** Values per example: the product of `exampleShape`. */
  readonly exampleSize: number;
  /** The closed interval every value must lie in, when the type declares one (`range`, e.g. labels). */
  readonly range?: readonly [number, number];
}

/** Why `v` is outside a leaf's declared range, or null (also when the leaf declares none). */
export function outOfRange(leaf: ExampleLeaf, v: number): string | null {
  if (!leaf.range) return null;
  const [min, max] = leaf.range;
  return v >= min && v <= max
    ? null
    : `${v} is outside the declared range [${min}, ${max}] of ${leafLabel(leaf.path)}`;
}

/** How a leaf is named in messages and CSV headers: its path joined by ".", or "value" for a bare tensor. */
export function leafLabel(path: readonly string[]): string {
  return path.length === 0 ? 'value' : path.join('.');
}

function invalid(message: string, details: readonly ErrorDetail[]): AppError {
  return new AppError('DATA_INVALID', message, details);
}

/**
 * The per-example view of a batch type (`client_data.element`); throws DATA_INVALID unless every leaf has a
 * leading batch dimension that is null or `batchSize` (when given) and all other dimensions are known.
 */
export function exampleLeaves(element: TffType, batchSize?: number): ExampleLeaf[] {
  let leaves: TensorLeaf[];
  try {
    leaves = tensorLeaves(element);
  } catch (e) {
    throw invalid('invalid client data element type', [{ path: 'element', message: (e as Error).message }]);
  }
  const problems: ErrorDetail[] = [];
  const out: ExampleLeaf[] = [];
  for (const { path, type } of leaves) {
    const label = leafLabel(path);
    const [batchDim, ...rest] = type.shape;
    if (batchDim === undefined) {
      problems.push({ path: label, message: `${formatType(type)} has no leading batch dimension` });
      continue;
    }
    if (batchDim !== null && batchSize !== undefined && batchDim !== batchSize) {
      problems.push({
        path: label,
        message: `batch dimension ${batchDim} of ${formatType(type)} is not the batch size ${batchSize}`,
      });
    }
    if (rest.some((d) => d === null)) {
      problems.push({
        path: label,
        message: `${formatType(type)} has an unknown dimension after the batch dimension`,
      });
      continue;
    }
    const exampleShape = rest as number[];
    const range = type.range as [number, number] | undefined;
    if (range && !(range.length === 2 && range[0] <= range[1])) {
      problems.push({
        path: label,
        message: `range ${JSON.stringify(range)} is not [min, max] with min <= max`,
      });
      continue;
    }
    out.push({
      path,
      dtype: type.dtype,
      batchDim,
      exampleShape,
      exampleSize: exampleShape.reduce((a, b) => a * b, 1),
      ...(range ? { range: [range[0], range[1]] as const } : {}),
    });
  }
  if (problems.length > 0) throw invalid(`invalid client data element type ${formatType(element)}`, problems);
  return out;
}

function arrayFits(data: ExampleData, dtype: Dtype): boolean {
  if (dtype === 'float32') return data instanceof Float32Array;
  if (dtype === 'int32') return data instanceof Int32Array;
  return data instanceof Uint8Array;
}

/**
 * Checks examples against the per-example leaves: one typed array per leaf of the right kind and length,
 * bools 0/1, floats finite (NaN in client data is always a bug upstream), values inside a declared range
 * (naming the example and, for a leaf of several values per example, the value); throws DATA_INVALID.
 */
export function checkClientExamples(
  examples: ClientExamples,
  leaves: readonly ExampleLeaf[],
  who = 'client',
): void {
  const { count } = examples;
  if (!Number.isSafeInteger(count) || count < 0) {
    throw invalid('invalid client examples', [
      { path: who, message: `count ${count} is not a non-negative integer` },
    ]);
  }
  if (examples.leaves.length !== leaves.length) {
    throw invalid('invalid client examples', [
      {
        path: who,
        message: `${examples.leaves.length} leaf arrays for an element type with ${leaves.length} tensors`,
      },
    ]);
  }
  const problems: ErrorDetail[] = [];
  leaves.forEach((leaf, i) => {
    const data = examples.leaves[i]!;
    const path = `${who}: ${leafLabel(leaf.path)}`;
    if (!arrayFits(data, leaf.dtype)) {
      problems.push({
        path,
        message: `${leaf.dtype} needs its own typed array, got ${data.constructor.name}`,
      });
    } else if (data.length !== count * leaf.exampleSize) {
      problems.push({
        path,
        message: `${data.length} values, expected ${count} examples x ${leaf.exampleSize}`,
      });
    } else if (leaf.dtype === 'float32') {
      const at = (data as Float32Array).findIndex((v) => !Number.isFinite(v));
      if (at >= 0) problems.push({ path, message: `value ${at} is ${data[at]}` });
    } else if (leaf.dtype === 'bool') {
      const at = (data as Uint8Array).findIndex((v) => v > 1);
      if (at >= 0) problems.push({ path, message: `bool value ${at} is ${data[at]}, not 0 or 1` });
    }
    if (leaf.range && problems.length === 0) {
      const at = data.findIndex((v: number) => outOfRange(leaf, v) !== null);
      if (at >= 0) {
        const example = Math.floor(at / leaf.exampleSize);
        const which = leaf.exampleShape.length === 0 ? '' : `, value ${at % leaf.exampleSize}`;
        problems.push({ path: `${path}, example ${example}${which}`, message: outOfRange(leaf, data[at]!)! });
      }
    }
  });
  if (problems.length > 0) throw invalid('invalid client examples', problems);
}

/** An empty typed array of a leaf's dtype with room for `count` examples. */
export function allocateLeaf(leaf: ExampleLeaf, count: number): ExampleData {
  const n = count * leaf.exampleSize;
  if (leaf.dtype === 'float32') return new Float32Array(n);
  if (leaf.dtype === 'int32') return new Int32Array(n);
  return new Uint8Array(n);
}

/** Concatenates several clients' examples into one set (held-out data kept in a clients CSV). */
export function mergeExamples(parts: readonly ClientExamples[], element: TffType): ClientExamples {
  const leaves = exampleLeaves(element);
  parts.forEach((p, i) => checkClientExamples(p, leaves, `part ${i}`));
  const count = parts.reduce((n, p) => n + p.count, 0);
  return {
    count,
    leaves: leaves.map((leaf, i) => {
      const out = allocateLeaf(leaf, count);
      let at = 0;
      for (const p of parts) {
        const data = p.leaves[i]!;
        out.set(data as never, at);
        at += data.length;
      }
      return out;
    }),
  };
}
