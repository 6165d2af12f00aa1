import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend';
import { tensorType as T } from '../types';
import { REDUCTION_OPS } from './reductions';
import {
  bool,
  empty,
  f32,
  i32,
  runError,
  runOp,
  schemaErrors,
  type BadCase,
  type OkCase,
  type RunErrorCase,
} from './testing';

const INT32_MAX = 2147483647;
const INT32_MIN = -2147483648;
import { testOpTable } from './op-table.jest';

beforeAll(() => initBackend());

const [t, f] = [true, false];
const X = [
  [1, 2, 3],
  [4, 5, 6],
];

const OK: OkCase[] = [
  { op: 'reduce_sum', what: 'all axes by default', args: [f32(X)], type: T('float32', []), value: 21 },
  {
    op: 'reduce_sum',
    what: 'keepdims',
    args: [f32(X)],
    attrs: { axes: [1], keepdims: true },
    type: T('float32', [2, 1]),
    value: [[6], [15]],
  },
  {
    op: 'reduce_sum',
    what: 'a negative axis, unknown batch kept',
    args: [f32(X, [null, 3])],
    attrs: { axes: [-1] },
    type: T('float32', [null]),
    value: [6, 15],
  },
  {
    op: 'reduce_sum',
    what: 'over the unknown axis',
    args: [i32(X, [null, 3])],
    attrs: { axes: [0] },
    type: T('int32', [3]),
    value: [5, 7, 9],
  },
  {
    op: 'reduce_sum',
    what: 'no axes is the identity',
    args: [f32(X)],
    attrs: { axes: [] },
    type: T('float32', [2, 3]),
    value: X,
  },
  {
    op: 'reduce_sum',
    what: 'an empty batch is 0 (WASM returns garbage)',
    args: [empty('float32', [0, 3], [null, 3])],
    attrs: { axes: [0] },
    type: T('float32', [3]),
    value: [0, 0, 0],
  },
  { op: 'reduce_max', what: 'int32', args: [i32(X)], type: T('int32', []), value: 6 },
  {
    op: 'reduce_max',
    what: 'empty float32 is -inf',
    args: [empty('float32', [0, 2])],
    attrs: { axes: [0], keepdims: true },
    type: T('float32', [1, 2]),
    value: [[-Infinity, -Infinity]],
  },
  {
    op: 'reduce_max',
    what: 'empty int32 is INT32_MIN',
    args: [empty('int32', [0])],
    type: T('int32', []),
    value: -2147483648,
  },
  {
    op: 'reduce_min',
    what: 'float32',
    args: [f32(X)],
    attrs: { axes: [0] },
    type: T('float32', [3]),
    value: [1, 2, 3],
  },
  {
    op: 'reduce_min',
    what: 'empty is +inf',
    args: [empty('float32', [0])],
    type: T('float32', []),
    value: Infinity,
  },
  {
    op: 'reduce_prod',
    what: 'int32',
    args: [i32(X)],
    attrs: { axes: [1] },
    type: T('int32', [2]),
    value: [6, 120],
  },
  {
    op: 'reduce_prod',
    what: 'empty is 1',
    args: [empty('int32', [2, 0])],
    attrs: { axes: [1] },
    type: T('int32', [2]),
    value: [1, 1],
  },
  {
    op: 'reduce_mean',
    what: 'float32',
    args: [f32(X)],
    attrs: { axes: [0] },
    type: T('float32', [3]),
    value: [2.5, 3.5, 4.5],
  },
  {
    op: 'reduce_mean',
    what: 'empty is NaN',
    args: [empty('float32', [0, 2])],
    type: T('float32', []),
    value: NaN,
  },
  {
    op: 'reduce_any',
    what: 'rows',
    args: [
      bool([
        [t, f],
        [f, f],
      ]),
    ],
    attrs: { axes: [1] },
    type: T('bool', [2]),
    value: [t, f],
  },
  { op: 'reduce_any', what: 'empty is false', args: [empty('bool', [0])], type: T('bool', []), value: f },
  {
    op: 'reduce_all',
    what: 'columns, keepdims',
    args: [
      bool([
        [t, f],
        [t, t],
      ]),
    ],
    attrs: { axes: [0], keepdims: true },
    type: T('bool', [1, 2]),
    value: [[t, f]],
  },
  {
    op: 'reduce_all',
    what: 'empty is true',
    args: [empty('bool', [0, 2])],
    attrs: { axes: [0] },
    type: T('bool', [2]),
    value: [t, t],
  },
  {
    op: 'argmax',
    what: 'float32 rows',
    args: [
      f32(
        [
          [1, 7, 3],
          [9, 5, 6],
        ],
        [null, 3],
      ),
    ],
    attrs: { axis: -1 },
    type: T('int32', [null]),
    value: [1, 0],
  },
  {
    op: 'argmax',
    what: 'the first of ties',
    args: [i32([2, 5, 5, 1])],
    attrs: { axis: 0 },
    type: T('int32', []),
    value: 1,
  },
  {
    op: 'argmax',
    what: 'an empty result',
    args: [empty('float32', [0, 3])],
    attrs: { axis: 1 },
    type: T('int32', [0]),
    value: [],
  },
  {
    op: 'argmin',
    what: 'int32 columns',
    args: [
      i32([
        [1, 7, 3],
        [0, 9, 6],
      ]),
    ],
    attrs: { axis: 0 },
    type: T('int32', [3]),
    value: [1, 0, 0],
  },
  {
    op: 'norm',
    what: 'L2 of everything by default',
    args: [f32([[3, 4]])],
    type: T('float32', []),
    value: 5,
  },
  {
    op: 'norm',
    what: 'L1 of rows',
    args: [
      f32(
        [
          [1, -2],
          [3, 4],
        ],
        [null, 2],
      ),
    ],
    attrs: { ord: 1, axes: [1] },
    type: T('float32', [null]),
    value: [3, 7],
  },
  {
    op: 'norm',
    what: 'inf norm of two axes is a vector norm',
    args: [
      f32([
        [1, -5],
        [3, 4],
      ]),
    ],
    attrs: { ord: 'inf', axes: [0, 1], keepdims: true },
    type: T('float32', [1, 1]),
    value: [[5]],
  },
  {
    op: 'norm',
    what: 'L2 of two axes is a vector norm',
    args: [
      f32([
        [1, -2],
        [2, 4],
      ]),
    ],
    attrs: { ord: 2, axes: [0, 1] },
    type: T('float32', []),
    value: 5,
  },
  { op: 'norm', what: 'empty is 0', args: [empty('float32', [0, 2])], type: T('float32', []), value: 0 },
  {
    op: 'norm',
    what: 'empty inf norm is 0',
    args: [empty('float32', [0])],
    attrs: { ord: 'inf' },
    type: T('float32', []),
    value: 0,
  },
];

const BAD: BadCase[] = [
  ...['reduce_sum', 'reduce_max', 'reduce_min', 'reduce_prod', 'argmax', 'argmin'].map((op) => ({
    op,
    what: 'bool',
    types: [T('bool', [2])],
    attrs: op.startsWith('arg') ? { axis: 0 } : {},
    error: /^arg 0: dtype bool is not float32 or int32$/,
  })),
  ...['reduce_mean', 'norm'].map((op) => ({
    op,
    what: 'int32',
    types: [T('int32', [2])],
    error: /^arg 0: dtype int32 is not float32$/,
  })),
  ...['reduce_any', 'reduce_all'].map((op) => ({
    op,
    what: 'float32',
    types: [T('float32', [2])],
    error: /^arg 0: dtype float32 is not bool$/,
  })),
  {
    op: 'reduce_sum',
    what: 'an axis out of range',
    types: [T('float32', [2, 3])],
    attrs: { axes: [2] },
    error: /^attr axes: axis 2 is out of range -2..1$/,
  },
  {
    op: 'reduce_max',
    what: 'a repeated axis',
    types: [T('float32', [2, 3])],
    attrs: { axes: [0, -2] },
    error: /^attr axes: axis 0 is given more than once$/,
  },
  {
    op: 'argmax',
    what: 'a scalar',
    types: [T('float32', [])],
    attrs: { axis: 0 },
    error: /^attr axis: axis 0 is out of range \(a scalar has no axes\)$/,
  },
  {
    op: 'argmin',
    what: 'an axis out of range',
    types: [T('int32', [null, 2])],
    attrs: { axis: -3 },
    error: /^attr axis: axis -3 is out of range/,
  },
  {
    op: 'norm',
    what: 'an axis out of range',
    types: [T('float32', [2])],
    attrs: { axes: [1] },
    error: /^attr axes: axis 1/,
  },
];

const RUN_ERRORS: RunErrorCase[] = [
  {
    op: 'argmax',
    what: 'an empty axis',
    args: [empty('float32', [0, 3], [null, 3])],
    attrs: { axis: 0 },
    error: /^attr axis: dimension 0 of arg 0 \[0,3\] is empty$/,
  },
  // int32 sums and products outside int32 are errors, never wrapped values (int-overflow.ts).
  {
    op: 'reduce_sum',
    what: 'an int32 sum of 10, 10 and 2^31-1',
    args: [i32([10, 10, INT32_MAX])],
    error: /^int32 overflow: element 0 of the result is about 2147483667,/,
  },
  {
    op: 'reduce_sum',
    what: 'an int32 sum over axis 1 overflowing in the second row only',
    args: [
      i32([
        [INT32_MAX, INT32_MIN, 1],
        [2 ** 30, 2 ** 30, 0],
      ]),
    ],
    attrs: { axes: [1] },
    error: /^int32 overflow: element 1 of the result is about 2147483648,/,
  },
  {
    op: 'reduce_sum',
    what: 'an int32 sum below -2^31 over axis 0',
    args: [
      i32([
        [-1, 0],
        [INT32_MIN, 5],
      ]),
    ],
    attrs: { axes: [0] },
    error: /^int32 overflow: element 0 of the result is about -2147483649,/,
  },
  {
    op: 'reduce_prod',
    what: 'an int32 product of 65536 and 65536',
    args: [i32([65536, 65536])],
    error: /^int32 overflow: element 0/,
  },
  {
    op: 'reduce_prod',
    what: 'an int32 product of -2^31 and -1',
    args: [i32([INT32_MIN, -1])],
    error: /^int32 overflow: element 0/,
  },
];

testOpTable({ ok: OK, bad: BAD, runErrors: RUN_ERRORS });

test.each([
  ['norm', { ord: 3 }],
  ['norm', { ord: 'fro' }],
  ['argmax', {}],
  ['reduce_sum', { keepdims: 'yes' }],
  ['reduce_sum', { axis: 0 }],
])('%s schema rejects %j', (op, attrs) => {
  expect(schemaErrors(op, attrs)).not.toEqual([]);
});

describe('int32 overflow', () => {
  test.each([
    ['reduce_sum', [INT32_MAX, 1, -1], {}, INT32_MAX],
    ['reduce_sum', [INT32_MIN, 0], {}, INT32_MIN],
    // Intermediate sums leave int32 but the total does not: exact, as the wrapped arithmetic is.
    ['reduce_sum', [INT32_MAX, INT32_MAX, -INT32_MAX], {}, INT32_MAX],
    ['reduce_sum', [10, 10], {}, 20],
    ['reduce_prod', [-65536, 32768], {}, INT32_MIN],
    ['reduce_prod', [65536, 65536, 0], {}, 0],
    ['reduce_prod', [46340, 46340], {}, 2147395600],
  ] as const)('%s of %j is exact at the boundary', (op, values, attrs, value) => {
    const r = runOp(op, [i32([...values])], attrs);
    expect(r.value).toEqual(value);
    expect(r.leaked).toBe(0);
  });

  test('a large int32 sum that the float32 bound cannot clear is checked exactly', () => {
    // 2^20 elements skip the float32 filter; their sum is 2^31 - 1 exactly, then 2^31 + 1.
    const n = 2 ** 20;
    const values = new Array<number>(n).fill(2048);
    values[0] = 2047;
    expect(runOp('reduce_sum', [i32(values)]).value).toBe(INT32_MAX);
    values[0] = 2049;
    expect(runError('reduce_sum', [i32(values)])).toMatch(/^int32 overflow: element 0 .* about 2147483649,/);
  });

  test('a refused overflow leaks no tensor', () => {
    const before = tf.memory().numTensors;
    expect(runError('reduce_sum', [i32([INT32_MAX, 1])])).toMatch(/int32 overflow/);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('float32 reductions are unchanged: IEEE results, no check', () => {
    expect(runOp('reduce_sum', [f32([3.4e38, 3.4e38])]).value).toBe(Infinity);
    expect(runOp('reduce_prod', [f32([2 ** 31, 2 ** 31])]).value).toBe(2 ** 62);
  });
});

test('every reduction has success and failure cases', () => {
  for (const { name } of REDUCTION_OPS) {
    expect([name, OK.some((c) => c.op === name), BAD.some((c) => c.op === name)]).toEqual([name, true, true]);
  }
});
