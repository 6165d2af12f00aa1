import { initBackend } from '../backend';
import { tensorType as T } from '../types';
import { REDUCTION_OPS } from './reductions';
import { bool, empty, f32, i32, schemaErrors, type BadCase, type OkCase, type RunErrorCase } from './testing';
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

test('every reduction has success and failure cases', () => {
  for (const { name } of REDUCTION_OPS) {
    expect([name, OK.some((c) => c.op === name), BAD.some((c) => c.op === name)]).toEqual([name, true, true]);
  }
});
