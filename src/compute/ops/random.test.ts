import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend';
import { isAssignable, tensorType as T } from '../types';
import { drawSeed } from './random';
import { inferError, opNamed, runOp, schemaErrors, TEST_CTX } from './testing';

beforeAll(() => initBackend());

function draw(attrs: object, ctx = TEST_CTX): number[] {
  const r = runOp('random_normal', [], attrs, ctx);
  expect(isAssignable(r.inferred, r.actual)).toBe(true);
  expect(r.leaked).toBe(0);
  return (r.value as number[][]).flat();
}

test('random_normal infers float32 of the static shape and is server only', () => {
  expect(opNamed('random_normal').infer([], { shape: [2, 3] })).toEqual(T('float32', [2, 3]));
  expect(opNamed('random_normal').serverOnly).toBe(true);
});

test('a seeded draw repeats for the same round and node and differs across rounds and nodes', () => {
  const attrs = { shape: [2, 4], seed: 42 };
  const a = draw(attrs);
  expect(draw(attrs)).toEqual(a);
  expect(draw(attrs, { ...TEST_CTX, round: TEST_CTX.round + 1 })).not.toEqual(a);
  expect(draw(attrs, { ...TEST_CTX, node: 'test/other' })).not.toEqual(a);
  expect(draw({ ...attrs, seed: 43 })).not.toEqual(a);
});

test('an unseeded draw is fresh each time', () => {
  expect(draw({ shape: [1, 8] })).not.toEqual(draw({ shape: [1, 8] }));
});

test('mean and stddev shape the distribution', () => {
  const v = draw({ shape: [100, 100], mean: 3, stddev: 0.5, seed: 1 });
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  expect(Math.abs(mean - 3)).toBeLessThan(0.05);
  expect(Math.abs(sd - 0.5)).toBeLessThan(0.05);
  expect(new Set(draw({ shape: [1, 3], mean: -2, stddev: 0 }))).toEqual(new Set([-2]));
});

test('drawSeed is a 32-bit unsigned integer that depends on all three inputs', () => {
  const s = drawSeed(1, 2, 'a');
  expect(Number.isInteger(s) && s >= 0 && s < 2 ** 32).toBe(true);
  expect(new Set([s, drawSeed(2, 2, 'a'), drawSeed(1, 3, 'a'), drawSeed(1, 2, 'b')]).size).toBe(4);
});

test('random_normal rejects a negative stddev', () => {
  expect(inferError('random_normal', [], { shape: [2], stddev: -1 })).toBe('attr stddev: -1 is negative');
});

test.each([{}, { shape: [null] }, { shape: [2], seed: 1.5 }, { shape: [2], dtype: 'float32' }])(
  'random_normal schema rejects %j',
  (attrs) => {
    expect(schemaErrors('random_normal', attrs)).not.toEqual([]);
  },
);

test('random_normal leaves no tensors behind', () => {
  const before = tf.memory().numTensors;
  draw({ shape: [3], seed: 1 });
  expect(tf.memory().numTensors).toBe(before);
});
