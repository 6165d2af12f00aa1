import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../compute/backend';
import { structType, tensorType } from '../compute/types';
import { disposeValue, isStruct, type Value } from '../compute/value';
import { AppError } from '../errors';
import { toBatches } from './batches';
import type { ClientExamples } from './client-examples';

beforeAll(async () => {
  await initBackend();
});

let startTensors = 0;
beforeEach(() => {
  startTensors = tf.memory().numTensors;
});
afterEach(() => {
  expect(tf.memory().numTensors).toBe(startTensors);
});

const element = structType([
  ['x', tensorType('float32', [null, 2])],
  ['y', tensorType('int32', [null])],
]);

/** 5 examples: x = [10e, 10e+1], y = e. */
function examples(count = 5): ClientExamples {
  const x = new Float32Array(count * 2);
  const y = new Int32Array(count);
  for (let e = 0; e < count; e++) {
    x[2 * e] = 10 * e;
    x[2 * e + 1] = 10 * e + 1;
    y[e] = e;
  }
  return { count, leaves: [x, y] };
}

/** Each batch as {x, y} plain arrays with shapes, then disposed. */
function read(seq: {
  elements: readonly Value[];
}): { x: number[][]; xShape: number[]; y: number[]; yShape: number[] }[] {
  const out = seq.elements.map((b) => {
    if (!isStruct(b)) throw new Error('expected a struct batch');
    const [x, y] = b.fields.map((f) => f.value as tf.Tensor);
    expect(b.fields.map((f) => f.name)).toEqual(['x', 'y']);
    expect([x!.dtype, y!.dtype]).toEqual(['float32', 'int32']);
    return {
      x: x!.arraySync() as number[][],
      xShape: x!.shape,
      y: y!.arraySync() as number[],
      yShape: y!.shape,
    };
  });
  for (const b of seq.elements) disposeValue(b);
  return out;
}

describe('toBatches', () => {
  test('makes consecutive batches with a smaller last one', () => {
    const batches = read(toBatches(examples(), element, 2));
    expect(batches.map((b) => [b.xShape, b.yShape])).toEqual([
      [[2, 2], [2]],
      [[2, 2], [2]],
      [[1, 2], [1]],
    ]);
    expect(batches.map((b) => b.y)).toEqual([[0, 1], [2, 3], [4]]);
    expect(batches[2]!.x).toEqual([[40, 41]]);
    expect(batches[0]!.x).toEqual([
      [0, 1],
      [10, 11],
    ]);
  });

  test('one batch when the batch size exceeds the count, none for no examples', () => {
    expect(read(toBatches(examples(), element, 64)).map((b) => b.y)).toEqual([[0, 1, 2, 3, 4]]);
    expect(toBatches(examples(0), element, 4).elements).toHaveLength(0);
  });

  test('drops a short last batch when the type fixes the batch dimension', () => {
    const fixed = structType([
      ['x', tensorType('float32', [2, 2])],
      ['y', tensorType('int32', [null])],
    ]);
    expect(read(toBatches(examples(), fixed, 2)).map((b) => b.y)).toEqual([
      [0, 1],
      [2, 3],
    ]);
  });

  test('a bare tensor element gives tensor batches, bools included', () => {
    const seq = toBatches({ count: 3, leaves: [new Uint8Array([1, 0, 1])] }, tensorType('bool', [null]), 2);
    const got = seq.elements.map((b) => [(b as tf.Tensor).dtype, (b as tf.Tensor).arraySync()]);
    seq.elements.forEach(disposeValue);
    expect(got).toEqual([
      ['bool', [1, 0]],
      ['bool', [1]],
    ]);
  });

  test('shuffles deterministically by seed, keeping x and y together', () => {
    const a = read(toBatches(examples(20), element, 6, { shuffleSeed: 7 }));
    const b = read(toBatches(examples(20), element, 6, { shuffleSeed: 7 }));
    const c = read(toBatches(examples(20), element, 6, { shuffleSeed: 8 }));
    expect(a).toEqual(b);
    const order = a.flatMap((batch) => batch.y);
    expect(order).not.toEqual(c.flatMap((batch) => batch.y));
    expect(order).not.toEqual([...Array(20).keys()]);
    expect([...order].sort((p, q) => p - q)).toEqual([...Array(20).keys()]);
    for (const batch of a) batch.y.forEach((y, i) => expect(batch.x[i]).toEqual([10 * y, 10 * y + 1]));
    expect(a.map((batch) => batch.y.length)).toEqual([6, 6, 6, 2]);
  });

  test('does not alias the caller arrays', () => {
    const ex = examples(2);
    const seq = toBatches(ex, element, 2);
    (ex.leaves[1] as Int32Array)[0] = 99;
    expect(read(seq)[0]!.y).toEqual([0, 1]);
  });

  test.each([
    ['a non-positive batch size', () => toBatches(examples(), element, 0), 'batch_size'],
    [
      'a wrong typed array',
      () => toBatches({ count: 5, leaves: [new Float32Array(10), new Float32Array(5)] }, element, 2),
      'client: y',
    ],
    [
      'a wrong length',
      () => toBatches({ count: 5, leaves: [new Float32Array(9), new Int32Array(5)] }, element, 2),
      'client: x',
    ],
    ['a missing leaf', () => toBatches({ count: 5, leaves: [new Float32Array(10)] }, element, 2), 'client'],
    [
      'a NaN',
      () => toBatches({ count: 1, leaves: [new Float32Array([0, NaN]), new Int32Array(1)] }, element, 2),
      'client: x',
    ],
    [
      'a scalar leaf (no batch dimension)',
      () => toBatches(examples(), structType([['x', tensorType('float32', [])]]), 2),
      'x',
    ],
    [
      'an unknown inner dimension',
      () => toBatches(examples(), structType([['x', tensorType('float32', [null, null])]]), 2),
      'x',
    ],
    [
      'a batch dimension other than the batch size',
      () =>
        toBatches(
          examples(),
          structType([
            ['x', tensorType('float32', [3, 2])],
            ['y', tensorType('int32', [null])],
          ]),
          2,
        ),
      'x',
    ],
  ])('rejects %s with DATA_INVALID', (_, fn, path) => {
    let caught: unknown;
    try {
      fn();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(AppError);
    expect((caught as AppError).code).toBe('DATA_INVALID');
    expect((caught as AppError).details.map((d) => d.path)).toContain(path);
  });
});
