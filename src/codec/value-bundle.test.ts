import { rejects } from './rejects.jest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../compute/backend';
import { EMPTY_STRUCT, sequenceType, structType, tensorType, type TffType } from '../compute/types';
import { disposeValue, isStruct, sequenceValue, structValue, type Value } from '../compute/value';
import { AppError } from '../errors';
import { readBundle, writeBundle } from './bundle';
import { readTypedBundle } from './typed-bundle';
import { decodeBundle, encodeBundle } from './value-bundle';

beforeAll(async () => {
  await initBackend();
});

let startTensors = 0;
beforeEach(() => {
  startTensors = tf.memory().numTensors;
});
afterEach(() => {
  // Every test disposes what it made; a leak in encode/decode (or a rejected decode) shows up here.
  expect(tf.memory().numTensors).toBe(startTensors);
});

/** Plain nested arrays and dtypes of a value, for comparison. */
function plain(v: Value): unknown {
  if (isStruct(v)) return v.fields.map((f) => [f.name ?? null, plain(f.value)]);
  if (!(v instanceof tf.Tensor)) throw new Error('no sequences here');
  return { dtype: v.dtype, shape: v.shape, values: v.arraySync() };
}

function roundTrip(value: Value, type: TffType): void {
  const bytes = encodeBundle(value, type);
  const back = decodeBundle(bytes, type);
  expect(plain(back)).toEqual(plain(value));
  disposeValue(back);
  disposeValue(value);
}

const modelType = structType([
  [
    'weights',
    structType([
      ['kernel', tensorType('float32', [2, 3])],
      [undefined, tensorType('float32', [3])],
    ]),
  ],
  ['steps', tensorType('int32', [])],
  ['mask', tensorType('bool', [null])],
]);

function model(): Value {
  return structValue([
    [
      'weights',
      structValue([
        [
          'kernel',
          tf.tensor2d([
            [1, 2, 3],
            [-4.5, 0, 1e-30],
          ]),
        ],
        [undefined, tf.tensor1d([0.25, -0.125, 3e38])],
      ]),
    ],
    ['steps', tf.scalar(42, 'int32')],
    ['mask', tf.tensor1d([true, false, true, true], 'bool')],
  ]);
}

describe('encodeBundle / decodeBundle', () => {
  test('round-trips a nested struct of float32, int32 and bool', () => roundTrip(model(), modelType));

  test('names tensors by their leaf path and puts bools last', () => {
    const v = model();
    const { tensors } = readBundle(encodeBundle(v, modelType, { round: '7' }));
    disposeValue(v);
    expect(tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([
      ['weights/kernel', 'float32', [2, 3]],
      ['weights/1', 'float32', [3]],
      ['steps', 'int32', []],
      ['mask', 'bool', [4]],
    ]);
  });

  test('round-trips a bare scalar under the name "value"', () => {
    const type = tensorType('float32', []);
    const v = tf.scalar(-3.5);
    expect(readBundle(encodeBundle(v, type)).tensors[0]!.name).toBe('value');
    roundTrip(v, type);
  });

  test('round-trips the empty struct', () => roundTrip(structValue([]), EMPTY_STRUCT));

  // The CPU backend (the `cpu` jest project) keeps an int32 or bool array under a cast's float32 result.
  test('encodes float32 made by casting int32 and bool as float32 bytes', () => {
    const type = structType([
      ['a', tensorType('float32', [3])],
      ['b', tensorType('float32', [2])],
    ]);
    const v = structValue([
      ['a', tf.tidy(() => tf.cast(tf.tensor1d([1, -2, 3], 'int32'), 'float32'))],
      ['b', tf.tidy(() => tf.cast(tf.tensor1d([true, false], 'bool'), 'float32'))],
    ]);
    const { tensors } = readBundle(encodeBundle(v, type));
    disposeValue(v);
    expect(tensors.map((t) => [t.dtype, t.data.constructor.name, Array.from(t.data)])).toEqual([
      ['float32', 'Float32Array', [1, -2, 3]],
      ['float32', 'Float32Array', [1, 0]],
    ]);
  });

  test('round-trips a [0]-sized tensor', () => {
    roundTrip(structValue([['x', tf.zeros([0, 4])]]), structType([['x', tensorType('float32', [null, 4])]]));
  });

  test('keeps metadata', () => {
    const v = tf.scalar(1, 'int32');
    const bytes = encodeBundle(v, tensorType('int32', []), { plan: 'p1', round: '3' });
    v.dispose();
    expect(readBundle(bytes).metadata).toEqual({ plan: 'p1', round: '3' });
  });

  test('decoded tensors do not share memory with the input bytes', () => {
    const v = tf.tensor1d([1, 2]);
    const bytes = encodeBundle(v, tensorType('float32', [2]));
    const back = decodeBundle(bytes, tensorType('float32', [2])) as tf.Tensor;
    bytes.fill(0, bytes.length - 8);
    expect(Array.from(back.dataSync())).toEqual([1, 2]);
    tf.dispose([v, back]);
  });

  describe('encode rejects with BUNDLE_TYPE_MISMATCH', () => {
    test('a wrong dtype', () => {
      const v = tf.scalar(1, 'int32');
      const m = rejects(() => encodeBundle(v, tensorType('float32', [])), 'BUNDLE_TYPE_MISMATCH', 'value');
      expect(m).toMatch(/expected float32, got a int32 tensor/);
      v.dispose();
    });
    test('a wrong shape', () => {
      const v = structValue([['x', tf.zeros([2, 3])]]);
      rejects(
        () => encodeBundle(v, structType([['x', tensorType('float32', [2, 4])]])),
        'BUNDLE_TYPE_MISMATCH',
        'x',
      );
      disposeValue(v);
    });
    test('a struct where a tensor belongs, and a wrong field count or name', () => {
      const v = structValue([['a', tf.scalar(1)]]);
      rejects(() => encodeBundle(v, tensorType('float32', [])), 'BUNDLE_TYPE_MISMATCH', 'value');
      rejects(() => encodeBundle(v, EMPTY_STRUCT), 'BUNDLE_TYPE_MISMATCH', 'value');
      rejects(
        () => encodeBundle(v, structType([['b', tensorType('float32', [])]])),
        'BUNDLE_TYPE_MISMATCH',
        'value',
      );
      disposeValue(v);
    });
    test('sequences', () => {
      const v = sequenceValue([]);
      const m = rejects(
        () => encodeBundle(v, sequenceType(tensorType('float32', []))),
        'BUNDLE_TYPE_MISMATCH',
        'value',
      );
      expect(m).toMatch(/sequence/);
      const inStruct = structType([['data', sequenceType(tensorType('float32', []))]]);
      rejects(() => encodeBundle(structValue([['data', v]]), inStruct), 'BUNDLE_TYPE_MISMATCH', 'data');
      rejects(() => decodeBundle(writeBundle([]), inStruct), 'BUNDLE_TYPE_MISMATCH', 'header');
    });
  });

  describe('decode rejects with BUNDLE_TYPE_MISMATCH', () => {
    const type = structType([
      ['a', tensorType('float32', [null, 2])],
      ['b', tensorType('int32', [])],
    ]);
    const a = (shape: number[]) => ({
      name: 'a',
      dtype: 'float32' as const,
      shape,
      data: new Float32Array(shape.reduce((x, y) => x * y, 1)),
    });
    const b = { name: 'b', dtype: 'int32' as const, shape: [], data: new Int32Array(1) };

    test('accepts any size for a null dimension', () => {
      for (const n of [0, 1, 5]) disposeValue(decodeBundle(writeBundle([a([n, 2]), b]), type));
    });
    test('a missing tensor', () => {
      expect(
        rejects(() => decodeBundle(writeBundle([a([1, 2])]), type), 'BUNDLE_TYPE_MISMATCH', 'b'),
      ).toMatch(/missing/);
    });
    test('an extra tensor', () => {
      const extra = { name: 'c', dtype: 'bool' as const, shape: [], data: new Uint8Array(1) };
      expect(
        rejects(() => decodeBundle(writeBundle([a([1, 2]), b, extra]), type), 'BUNDLE_TYPE_MISMATCH', 'c'),
      ).toMatch(/not part of type/);
    });
    test('a wrong dtype', () => {
      const wrong = { name: 'b', dtype: 'float32' as const, shape: [], data: new Float32Array(1) };
      expect(
        rejects(() => decodeBundle(writeBundle([a([1, 2]), wrong]), type), 'BUNDLE_TYPE_MISMATCH', 'b'),
      ).toMatch(/dtype float32, expected int32/);
    });
    test('a wrong shape or rank', () => {
      expect(
        rejects(() => decodeBundle(writeBundle([a([1, 3]), b]), type), 'BUNDLE_TYPE_MISMATCH', 'a'),
      ).toMatch(/shape \[1,3\], expected float32\[\?,2\]/);
      rejects(() => decodeBundle(writeBundle([a([2]), b]), type), 'BUNDLE_TYPE_MISMATCH', 'a');
    });
    test('reports every problem at once', () => {
      let err: AppError | undefined;
      try {
        decodeBundle(writeBundle([a([1, 3])]), type);
      } catch (e) {
        err = e as AppError;
      }
      expect(err?.details.map((d) => d.path)).toEqual(['a', 'b']);
    });
    test('malformed bytes come first', () => {
      rejects(() => decodeBundle(new Uint8Array(3), type), 'BUNDLE_MALFORMED', 'header');
    });
  });

  describe('decode rejects non-finite floats with BUNDLE_NOT_FINITE', () => {
    const type = structType([['w', tensorType('float32', [3])]]);
    test.each([NaN, Infinity, -Infinity])('%p', (bad) => {
      const bytes = writeBundle([
        { name: 'w', dtype: 'float32', shape: [3], data: new Float32Array([0, bad, 1]) },
      ]);
      expect(rejects(() => decodeBundle(bytes, type), 'BUNDLE_NOT_FINITE', 'w')).toMatch(/element 1/);
      expect(() => readTypedBundle(bytes, type)).toThrow(AppError);
      const v = decodeBundle(bytes, type, { requireFinite: false });
      const values = (plain(v) as [string, { values: number[] }][])[0]![1].values;
      disposeValue(v);
      expect(values[1]).toBe(bad);
    });
  });
});
