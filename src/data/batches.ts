/** Turning one client's examples into the sequence of batches (TFF's D) that a plan's `work` folds over. */
import * as tf from '@tensorflow/tfjs';
import { AppError } from '../errors';
import type { TffType } from '../compute/types';
import { sequenceValue, structValue, type SequenceValue, type Value } from '../compute/value';
import {
  allocateLeaf,
  checkClientExamples,
  exampleLeaves,
  type ClientExamples,
  type ExampleData,
} from './client-examples';
import { seededPermutation, type Seed } from './seeded';

/** Options of `toBatches`. */
export interface BatchOptions {
  /** Shuffle the examples with this seed before batching; the same seed gives the same batches. */
  readonly shuffleSeed?: Seed;
}

/**
 * Splits examples into consecutive batches of `batchSize` (the last one smaller), each a value shaped like
 * `element` (struct or bare tensor). When the element type fixes its batch dimension to `batchSize`, a
 * smaller last batch would not match the type, so it is dropped (tf.data's `drop_remainder`).
 * The caller disposes the tensors (`disposeValue`).
 */
export function toBatches(
  examples: ClientExamples,
  element: TffType,
  batchSize: number,
  options: BatchOptions = {},
): SequenceValue {
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new AppError('DATA_INVALID', 'invalid batch size', [
      { path: 'batch_size', message: `${batchSize} is not a positive integer` },
    ]);
  }
  const leaves = exampleLeaves(element, batchSize);
  checkClientExamples(examples, leaves);
  const dropRemainder = leaves.some((l) => l.batchDim !== null);
  const order =
    options.shuffleSeed === undefined ? null : seededPermutation(examples.count, options.shuffleSeed);

  const batches: Value[] = [];
  for (let start = 0; start < examples.count; start += batchSize) {
    const size = Math.min(batchSize, examples.count - start);
    if (dropRemainder && size < batchSize) break;
    const arrays = leaves.map((leaf, i): ExampleData => {
      const data = examples.leaves[i]!;
      const k = leaf.exampleSize;
      // A fresh copy either way: the CPU backend keeps the array it is given, and callers may reuse theirs.
      if (order === null) return data.slice(start * k, (start + size) * k);
      const out = allocateLeaf(leaf, size);
      for (let j = 0; j < size; j++) {
        const from = order[start + j]! * k;
        out.set(data.subarray(from, from + k), j * k);
      }
      return out;
    });
    let next = 0;
    const build = (t: TffType): Value => {
      if (t.kind === 'struct') return structValue(t.fields.map((f) => [f.name, build(f.type)] as const));
      const leaf = leaves[next]!;
      const data = arrays[next++]!;
      return tf.tensor(data, [size, ...leaf.exampleShape], leaf.dtype);
    };
    batches.push(build(element));
  }
  return sequenceValue(batches);
}
