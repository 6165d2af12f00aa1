import * as tf from '@tensorflow/tfjs';
import { readBundle, writeBundle } from '../codec';
import { initBackend } from '../compute/backend';
import { structType, tensorType } from '../compute/types';
import { disposeValue, structValue, tensorsOf } from '../compute/value';
import { AppError } from '../errors';
import { decodePartial, encodePartial, partialType, PARTIAL_FORMAT } from './partial';
import { SecureSum } from './secure-sum';

beforeAll(() => initBackend());

const types = {
  A: structType([
    ['w', tensorType('float32', [3])],
    ['n', tensorType('int32', [])],
    ['ok', tensorType('bool', [2])],
  ]),
  V: [structType([['hist', tensorType('int32', [2])]]), tensorType('int32', []), structType([])] as const,
};
const params = { bitwidth: [20], max_input: [1000], modulus: [] };

function sums(): [SecureSum, SecureSum, SecureSum] {
  return [
    new SecureSum('bitwidth', params.bitwidth, [2]),
    new SecureSum('max_input', params.max_input, [1]),
    new SecureSum('modulus', params.modulus, []),
  ];
}

describe('worker partials', () => {
  test('round-trip A, exact secure sums beyond int32 and the client count', () => {
    const acc = structValue([
      ['w', tf.tensor1d([1.5, -2, Infinity])],
      ['n', tf.scalar(7, 'int32')],
      ['ok', tf.tensor1d([true, false], 'bool')],
    ]);
    const s = sums();
    // Sums beyond 2^31 (as many clients' bitwidth values add up) must survive exactly.
    const big = SecureSum.restore('bitwidth', params.bitwidth, [[2 ** 40 + 12345, 3]], 5);
    s[0] = big;
    s[1].add([[999]]);
    const bytes = encodePartial(types, acc, s, 5);
    disposeValue(acc);

    const before = tf.memory().numTensors;
    const p = decodePartial(bytes, types, params);
    expect(p.clients).toBe(5);
    const [w, n, ok] = tensorsOf(p.acc);
    expect(Array.from(w!.dataSync())).toEqual([1.5, -2, Infinity]);
    expect(n!.dtype).toBe('int32');
    expect(Array.from(n!.dataSync())).toEqual([7]);
    expect(Array.from(ok!.dataSync())).toEqual([1, 0]);
    expect(Array.from(p.sums[0].partialSums()[0]!)).toEqual([2 ** 40 + 12345, 3]);
    expect(Array.from(p.sums[1].partialSums()[0]!)).toEqual([999]);
    expect(p.sums[2].partialSums()).toHaveLength(0);
    expect(p.sums.map((x) => x.kind)).toEqual(['bitwidth', 'max_input', 'modulus']);
    // Merging decoded partials keeps adding exactly.
    p.sums[1].merge(p.sums[1]);
    expect(Array.from(p.sums[1].result()[0]!)).toEqual([1998]);
    disposeValue(p.acc);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('the bundle names the parts and carries the format', () => {
    const acc = structValue([
      ['w', tf.zeros([3])],
      ['n', tf.scalar(0, 'int32')],
      ['ok', tf.tensor1d([false, false], 'bool')],
    ]);
    const { metadata, tensors } = readBundle(encodePartial(types, acc, sums(), 0));
    disposeValue(acc);
    expect(metadata).toEqual({ format: PARTIAL_FORMAT, clients: '0' });
    expect(tensors.map((t) => t.name).sort()).toEqual(['A/n', 'A/ok', 'A/w', 'V1/0', 'V2/0']);
    expect(partialType(types)).toMatchObject({ kind: 'struct' });
  });

  test('rejects an accumulator that does not match A', () => {
    const wrong = structValue([
      ['w', tf.zeros([4])],
      ['n', tf.scalar(0, 'int32')],
      ['ok', tf.tensor1d([false, false], 'bool')],
    ]);
    expect(() => encodePartial(types, wrong, sums(), 0)).toThrow(AppError);
    disposeValue(wrong);
  });

  test('rejects bundles that are not partials of this plan', () => {
    const other = writeBundle([{ name: 'A/w', dtype: 'float32', shape: [3], data: new Float32Array(3) }]);
    expect(() => decodePartial(other, types, params)).toThrow(AppError);
    const acc = structValue([
      ['w', tf.zeros([3])],
      ['n', tf.scalar(0, 'int32')],
      ['ok', tf.tensor1d([false, false], 'bool')],
    ]);
    const bytes = encodePartial(types, acc, sums(), 2);
    disposeValue(acc);
    const { tensors } = readBundle(bytes);
    const noFormat = writeBundle(tensors, { clients: '2' });
    expect(() => decodePartial(noFormat, types, params)).toThrow(/not a partial/);
  });
});
