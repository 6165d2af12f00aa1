import { initBackend } from '../backend';
import { tensorType as T } from '../types';
import { SHAPE_OPS } from './shapes';
import { bool, empty, f32, i32, schemaErrors, type BadCase, type OkCase, type RunErrorCase } from './testing';
import { testOpTable } from './op-table.jest';

beforeAll(() => initBackend());

const [t, f] = [true, false];
const X = [
  [1, 2, 3],
  [4, 5, 6],
];

const OK: OkCase[] = [
  {
    op: 'reshape',
    what: 'known to known',
    args: [f32(X)],
    attrs: { shape: [3, 2] },
    type: T('float32', [3, 2]),
    value: [
      [1, 2],
      [3, 4],
      [5, 6],
    ],
  },
  {
    op: 'reshape',
    what: 'an unknown batch through -1',
    args: [
      f32(
        [
          [1, 2, 3, 4],
          [5, 6, 7, 8],
        ],
        [null, 4],
      ),
    ],
    attrs: { shape: [-1, 2, 2] },
    type: T('float32', [null, 2, 2]),
    value: [
      [
        [1, 2],
        [3, 4],
      ],
      [
        [5, 6],
        [7, 8],
      ],
    ],
  },
  {
    op: 'reshape',
    what: '-1 resolved',
    args: [i32(X)],
    attrs: { shape: [-1] },
    type: T('int32', [6]),
    value: [1, 2, 3, 4, 5, 6],
  },
  {
    op: 'reshape',
    what: 'unknown to known when the count can fit',
    args: [
      bool(
        [
          [t, f],
          [f, t],
        ],
        [null, 2],
      ),
    ],
    attrs: { shape: [4] },
    type: T('bool', [4]),
    value: [t, f, f, t],
  },
  {
    op: 'reshape',
    what: 'to a scalar',
    args: [f32([7])],
    attrs: { shape: [] },
    type: T('float32', []),
    value: 7,
  },
  {
    op: 'transpose',
    what: 'reversed by default',
    args: [f32(X)],
    type: T('float32', [3, 2]),
    value: [
      [1, 4],
      [2, 5],
      [3, 6],
    ],
  },
  {
    op: 'transpose',
    what: 'a permutation with an unknown dim',
    args: [i32([[[1, 2]], [[3, 4]]], [null, 1, 2])],
    attrs: { perm: [2, 0, 1] },
    type: T('int32', [2, null, 1]),
    value: [
      [[1], [3]],
      [[2], [4]],
    ],
  },
  {
    op: 'transpose',
    what: 'bool',
    args: [bool([[t, f]])],
    attrs: { perm: [1, 0] },
    type: T('bool', [2, 1]),
    value: [[t], [f]],
  },
  {
    op: 'expand_dims',
    what: 'axis 0',
    args: [f32([1, 2])],
    attrs: { axis: 0 },
    type: T('float32', [1, 2]),
    value: [[1, 2]],
  },
  {
    op: 'expand_dims',
    what: 'axis -1 appends',
    args: [i32([[1, 2]], [null, 2])],
    attrs: { axis: -1 },
    type: T('int32', [null, 2, 1]),
    value: [[[1], [2]]],
  },
  {
    op: 'expand_dims',
    what: 'a scalar',
    args: [bool(t)],
    attrs: { axis: 0 },
    type: T('bool', [1]),
    value: [t],
  },
  {
    op: 'squeeze',
    what: 'every size-1 dim',
    args: [f32([[[1], [2]]])],
    type: T('float32', [2]),
    value: [1, 2],
  },
  {
    op: 'squeeze',
    what: 'an unknown dim named in axes',
    args: [i32([[1, 2]], [null, 2])],
    attrs: { axes: [0] },
    type: T('int32', [2]),
    value: [1, 2],
  },
  {
    op: 'squeeze',
    what: 'a negative axis',
    args: [f32([[1], [2]])],
    attrs: { axes: [-1] },
    type: T('float32', [2]),
    value: [1, 2],
  },
  {
    op: 'squeeze',
    what: 'no axes removes nothing (tf.squeeze would remove all)',
    args: [f32([[1, 2]])],
    attrs: { axes: [] },
    type: T('float32', [1, 2]),
    value: [[1, 2]],
  },
  {
    op: 'dim',
    what: 'an unknown dim',
    args: [f32(X, [null, 3])],
    attrs: { axis: 0 },
    type: T('int32', []),
    value: 2,
  },
  {
    op: 'dim',
    what: 'a negative axis',
    args: [bool([[t, f]])],
    attrs: { axis: -1 },
    type: T('int32', []),
    value: 2,
  },
  { op: 'size', what: 'unknown dims', args: [i32(X, [null, null])], type: T('int32', []), value: 6 },
  { op: 'size', what: 'empty', args: [empty('float32', [0, 3], [null, 3])], type: T('int32', []), value: 0 },
  { op: 'size', what: 'a scalar', args: [f32(1)], type: T('int32', []), value: 1 },
];

const BAD: BadCase[] = [
  {
    op: 'reshape',
    what: 'two -1',
    types: [T('float32', [2, 3])],
    attrs: { shape: [-1, -1] },
    error: /^attr shape: \[-1,-1\] has more than one -1$/,
  },
  {
    op: 'reshape',
    what: 'a different element count',
    types: [T('float32', [2, 3])],
    attrs: { shape: [4] },
    error: /^attr shape: \[4\] holds 4 elements, arg 0 has 6$/,
  },
  {
    op: 'reshape',
    what: 'a count the known dims cannot divide',
    types: [T('float32', [null, 3])],
    attrs: { shape: [4] },
    error: /^attr shape: \[4\] holds 4 elements, not a multiple of 3$/,
  },
  {
    op: 'reshape',
    what: '-1 beside a 0',
    types: [T('float32', [2, 3])],
    attrs: { shape: [0, -1] },
    error: /^attr shape: -1 is ambiguous/,
  },
  {
    op: 'reshape',
    what: '-1 that does not divide',
    types: [T('float32', [2, 3])],
    attrs: { shape: [-1, 4] },
    error: /^attr shape: 6 elements of arg 0 do not fill \[-1,4\]/,
  },
  {
    op: 'transpose',
    what: 'a repeated axis',
    types: [T('float32', [2, 3])],
    attrs: { perm: [0, 0] },
    error: /^attr perm: \[0,0\] is not a permutation of 0..1 \(arg 0 has rank 2\)$/,
  },
  {
    op: 'transpose',
    what: 'a perm of the wrong length',
    types: [T('float32', [2, 3])],
    attrs: { perm: [0] },
    error: /^attr perm: \[0\] is not a permutation/,
  },
  {
    op: 'expand_dims',
    what: 'an axis past the end',
    types: [T('float32', [2, 3])],
    attrs: { axis: 3 },
    error: /^attr axis: axis 3 is out of range -3..2$/,
  },
  {
    op: 'squeeze',
    what: 'no axes with unknown dims',
    types: [T('float32', [null, 1])],
    error: /^attr axes: needed because arg 0 \[\?,1\] has unknown dimensions$/,
  },
  {
    op: 'squeeze',
    what: 'a dim that is not 1',
    types: [T('float32', [2, 1])],
    attrs: { axes: [0] },
    error: /^attr axes: dimension 0 of arg 0 \[2,1\] is 2, not 1$/,
  },
  {
    op: 'dim',
    what: 'an axis out of range',
    types: [T('float32', [2])],
    attrs: { axis: 1 },
    error: /^attr axis: axis 1 is out of range/,
  },
  { op: 'size', what: 'a missing arg', types: [], error: /^arg 0: missing/ },
];

const RUN_ERRORS: RunErrorCase[] = [
  {
    op: 'reshape',
    what: 'an unknown dim that does not fit',
    args: [f32(X, [null, 3])],
    attrs: { shape: [3] },
    error: /^attr shape: \[3\] holds 3 elements, arg 0 has 6$/,
  },
  {
    op: 'reshape',
    what: '-1 that does not divide at run time',
    args: [f32([[1, 2, 3]], [null, 3])],
    attrs: { shape: [-1, 2] },
    error: /^attr shape: 3 elements of arg 0 do not fill/,
  },
  {
    op: 'squeeze',
    what: 'an unknown dim that is not 1',
    args: [f32(X, [null, 3])],
    attrs: { axes: [0] },
    error: /^attr axes: dimension 0 of arg 0 \[2,3\] is not 1$/,
  },
];

testOpTable({ ok: OK, bad: BAD, runErrors: RUN_ERRORS });

test.each([
  ['reshape', {}],
  ['reshape', { shape: [-2] }],
  ['reshape', { shape: [null] }],
  ['transpose', { perm: [0.5] }],
  ['expand_dims', {}],
  ['dim', {}],
  ['size', { axis: 0 }],
])('%s schema rejects %j', (op, attrs) => {
  expect(schemaErrors(op, attrs)).not.toEqual([]);
});

test('every shape op has success and failure cases', () => {
  for (const { name } of SHAPE_OPS) {
    expect([name, OK.some((c) => c.op === name), BAD.some((c) => c.op === name)]).toEqual([name, true, true]);
  }
});
