import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../compute/backend';
import { formatType } from '../compute/types';
import { disposeValue, isStruct } from '../compute/value';
import { AppError } from '../errors';
import { toBatches } from './batches';
import {
  digitsClientExamples,
  digitsElementType,
  loadDigits,
  parseDigitsCsv,
  partitionNonIid,
  trainTestSplit,
  type DigitsData,
} from './digits';

// Loaded at collection time (synchronously) because describe bodies below derive partitions from it.
const data: DigitsData = loadDigits();
beforeAll(async () => {
  await initBackend();
});

describe('loadDigits', () => {
  test('loads 1797 images of 64 pixels in 0..1 with labels 0..9', () => {
    expect(data.n).toBe(1797);
    expect(data.x).toHaveLength(1797 * 64);
    expect(data.y).toHaveLength(1797);
    expect(data.x.reduce((a, b) => Math.max(a, b), -Infinity)).toBe(1);
    expect(data.x.reduce((a, b) => Math.min(a, b), Infinity)).toBe(0);
    expect([...new Set(data.y)].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Every pixel is a count/16.
    expect(data.x.every((v) => Number.isInteger(v * 16))).toBe(true);
    // The first image of scikit-learn's copy is a 0.
    expect(data.y[0]).toBe(0);
    expect(Array.from(data.x.subarray(0, 8), (v) => v * 16)).toEqual([0, 0, 5, 13, 9, 1, 0, 0]);
  });

  test('rejects malformed rows with DATA_INVALID naming line and column', () => {
    const good = Array(64).fill('0').join(',');
    const cases: [string, string][] = [
      [`${good},3\n${good}`, 'line 2'],
      [`${good},10`, 'line 1, column 65'],
      [`${good.replace(/^0/, '17')},1`, 'line 1, column 1'],
      [`${good.replace(/^0/, 'x')},1`, 'line 1, column 1'],
    ];
    for (const [text, path] of cases) {
      let caught: unknown;
      try {
        parseDigitsCsv(text);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(AppError);
      expect((caught as AppError).code).toBe('DATA_INVALID');
      expect((caught as AppError).details[0]?.path).toBe(path);
    }
  });
});

describe('trainTestSplit', () => {
  test('holds out round(n x fraction) examples, deterministically per seed', () => {
    const { train, test } = trainTestSplit(data, 0.2, 42);
    expect([train.n, test.n]).toEqual([1438, 359]);
    expect(train.x).toHaveLength(1438 * 64);
    const again = trainTestSplit(data, 0.2, 42);
    expect(again.test.y).toEqual(test.y);
    expect(again.test.x).toEqual(test.x);
    expect(trainTestSplit(data, 0.2, 43).test.x).not.toEqual(test.x);
    expect(trainTestSplit(data, 0.5).test.n).toBe(899);
    // Label counts add up: the two parts are a partition of the data.
    const count = (y: Int32Array, l: number) => y.filter((v) => v === l).length;
    for (let l = 0; l < 10; l++) expect(count(train.y, l) + count(test.y, l)).toBe(count(data.y, l));
  });
});

describe('partitionNonIid', () => {
  const { train } = trainTestSplit(data, 0.2, 1);
  const clients = partitionNonIid(train.y, 100, 2, 5);

  test('gives every training example to exactly one client, in near-equal parts', () => {
    const all = clients.flat().sort((a, b) => a - b);
    expect(all).toEqual([...Array(train.n).keys()]);
    const sizes = clients.map((c) => c.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(2);
  });

  test('leaves each client mostly two labels', () => {
    let inTopTwo = 0;
    for (const indices of clients) {
      const counts = new Map<number, number>();
      for (const i of indices) counts.set(train.y[i]!, (counts.get(train.y[i]!) ?? 0) + 1);
      const sorted = [...counts.values()].sort((a, b) => b - a);
      const topTwo = sorted[0]! + (sorted[1] ?? 0);
      // Each ~7-example shard lies within one label or straddles two, so at most 4 labels per client, and
      // each shard's own majority label puts at least half of the client's examples in its top two labels.
      expect(counts.size).toBeLessThanOrEqual(4);
      expect(topTwo).toBeGreaterThanOrEqual(indices.length / 2);
      inTopTwo += topTwo;
    }
    // Overall almost every example belongs to one of its client's two main labels (an IID split: about 20%).
    expect(inTopTwo / train.n).toBeGreaterThan(0.95);
  });

  test('is deterministic per seed and validates its arguments', () => {
    expect(partitionNonIid(train.y, 100, 2, 5)).toEqual(clients);
    expect(partitionNonIid(train.y, 100, 2, 6)).not.toEqual(clients);
    expect(partitionNonIid(train.y, 10, 3, 0)).toHaveLength(10);
    expect(() => partitionNonIid(train.y, 0)).toThrow(RangeError);
    expect(() => partitionNonIid(new Int32Array(3), 2, 2)).toThrow(RangeError);
  });
});

describe('digits client data', () => {
  test('fits the element type and batches into it', () => {
    expect(formatType(digitsElementType())).toBe('<x=float32[?,64],y=int32[?]>');
    const examples = digitsClientExamples(data, [5, 0, 9]);
    expect(examples.count).toBe(3);
    expect(Array.from(examples.leaves[1]!)).toEqual([data.y[5], data.y[0], data.y[9]]);
    expect(Array.from(examples.leaves[0]!.subarray(64, 128))).toEqual(Array.from(data.x.subarray(0, 64)));

    const start = tf.memory().numTensors;
    const seq = toBatches(examples, digitsElementType(), 2);
    const shapes = seq.elements.map((b) =>
      isStruct(b) ? b.fields.map((f) => (f.value as tf.Tensor).shape) : null,
    );
    seq.elements.forEach(disposeValue);
    expect(shapes).toEqual([
      [[2, 64], [2]],
      [[1, 64], [1]],
    ]);
    expect(tf.memory().numTensors).toBe(start);
  });
});
