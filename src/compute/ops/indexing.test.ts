import { initBackend } from '../backend';
import { tensorType as T } from '../types';
import { INDEXING_OPS } from './indexing';
import {
  bool,
  empty,
  f32,
  i32,
  inferError,
  runError,
  schemaErrors,
  TEST_CTX,
  type BadCase,
  type OkCase,
  type RunErrorCase,
} from './testing';
import { testOpTable } from './op-table.jest';

beforeAll(() => initBackend());

const [t, f] = [true, false];
const X = [
  [1, 2, 3],
  [4, 5, 6],
];
const R = [
  [1, 2],
  [3, 4],
  [5, 6],
];

const OK: OkCase[] = [
  {
    op: 'slice',
    what: 'a block',
    args: [f32(X)],
    attrs: { begin: [0, 1], size: [2, 2] },
    type: T('float32', [2, 2]),
    value: [
      [2, 3],
      [5, 6],
    ],
  },
  {
    op: 'slice',
    what: '-1 runs to the end',
    args: [i32(X)],
    attrs: { begin: [1, 0], size: [-1, -1] },
    type: T('int32', [1, 3]),
    value: [[4, 5, 6]],
  },
  {
    op: 'slice',
    what: '-1 on an unknown dim',
    args: [f32(X, [null, 3])],
    attrs: { begin: [1, 1], size: [-1, 1] },
    type: T('float32', [null, 1]),
    value: [[5]],
  },
  {
    op: 'slice',
    what: 'an empty bool block at the end',
    args: [bool([[t, f]])],
    attrs: { begin: [0, 2], size: [1, 0] },
    type: T('bool', [1, 0]),
    value: [], // arraySync of any empty tensor
  },
  {
    op: 'gather',
    what: 'rows',
    args: [f32(R), i32([2, 0])],
    type: T('float32', [2, 2]),
    value: [
      [5, 6],
      [1, 2],
    ],
  },
  {
    op: 'gather',
    what: 'axis 1 with 2-D indices',
    args: [i32(R), i32([[1, 0]])],
    attrs: { axis: 1 },
    type: T('int32', [3, 1, 2]),
    value: [[[2, 1]], [[4, 3]], [[6, 5]]],
  },
  { op: 'gather', what: 'a scalar index', args: [f32(R), i32(1)], type: T('float32', [2]), value: [3, 4] },
  {
    op: 'gather',
    what: 'unknown dims, repeated indices',
    args: [f32(R, [null, 2]), i32([1, 1, 0], [null])],
    attrs: { axis: 0 },
    type: T('float32', [null, 2]),
    value: [
      [3, 4],
      [3, 4],
      [1, 2],
    ],
  },
  {
    op: 'gather',
    what: 'bool, negative axis',
    args: [
      bool([
        [t, f],
        [f, f],
      ]),
      i32([1]),
    ],
    attrs: { axis: -1 },
    type: T('bool', [2, 1]),
    value: [[f], [f]],
  },
  {
    op: 'gather',
    what: 'no indices',
    args: [f32(R), empty('int32', [0], [null])],
    type: T('float32', [null, 2]),
    value: [],
  },
  {
    op: 'gather',
    what: 'nothing from nothing (tfjs gets the shape wrong)',
    args: [empty('float32', [0, 2], [null, 2]), empty('int32', [0])],
    type: T('float32', [0, 2]),
    value: [],
  },
  {
    op: 'one_hot',
    what: 'defaults',
    args: [i32([0, 2])],
    attrs: { depth: 3 },
    type: T('float32', [2, 3]),
    value: [
      [1, 0, 0],
      [0, 0, 1],
    ],
  },
  {
    op: 'one_hot',
    what: 'indices out of range give off rows',
    args: [i32([-1, 3])],
    attrs: { depth: 3 },
    type: T('float32', [2, 3]),
    value: [
      [0, 0, 0],
      [0, 0, 0],
    ],
  },
  {
    op: 'one_hot',
    what: 'on and off values (WASM writes int bits into float32)',
    args: [i32([1, 0], [null])],
    attrs: { depth: 2, on_value: 0.5, off_value: -0.25 },
    type: T('float32', [null, 2]),
    value: [
      [-0.25, 0.5],
      [0.5, -0.25],
    ],
  },
  {
    op: 'one_hot',
    what: 'a scalar index',
    args: [i32(1)],
    attrs: { depth: 2 },
    type: T('float32', [2]),
    value: [0, 1],
  },
  {
    op: 'one_hot',
    what: '2-D indices',
    args: [i32([[0], [1]])],
    attrs: { depth: 2 },
    type: T('float32', [2, 1, 2]),
    value: [[[1, 0]], [[0, 1]]],
  },
];

const BAD: BadCase[] = [
  {
    op: 'slice',
    what: 'begin of the wrong length',
    types: [T('float32', [2, 3])],
    attrs: { begin: [0], size: [1, 1] },
    error: /^attr begin: has 1 entries, arg 0 has rank 2$/,
  },
  {
    op: 'slice',
    what: 'size of the wrong length',
    types: [T('float32', [2, 3])],
    attrs: { begin: [0, 0], size: [1] },
    error: /^attr size: has 1 entries, arg 0 has rank 2$/,
  },
  {
    op: 'slice',
    what: 'begin past the end',
    types: [T('float32', [null, 3])],
    attrs: { begin: [0, 4], size: [1, -1] },
    error: /^attr begin: 4 is past the end of dimension 1 \(size 3\)$/,
  },
  {
    op: 'slice',
    what: 'size past the end',
    types: [T('float32', [2, 3])],
    attrs: { begin: [0, 1], size: [1, 3] },
    error: /^attr size: 1\+3 is past the end of dimension 1 \(size 3\)$/,
  },
  {
    op: 'gather',
    what: 'float32 indices',
    types: [T('float32', [3, 2]), T('float32', [2])],
    error: /^arg 1: dtype float32 is not int32$/,
  },
  {
    op: 'gather',
    what: 'an axis out of range',
    types: [T('float32', [3, 2]), T('int32', [2])],
    attrs: { axis: 2 },
    error: /^attr axis: axis 2 is out of range -2..1$/,
  },
  {
    op: 'gather',
    what: 'a scalar',
    types: [T('float32', []), T('int32', [])],
    error: /^attr axis: axis 0 is out of range \(a scalar has no axes\)$/,
  },
  {
    op: 'one_hot',
    what: 'float32 indices',
    types: [T('float32', [2])],
    attrs: { depth: 2 },
    error: /^arg 0: dtype float32 is not int32$/,
  },
  {
    op: 'one_hot',
    what: 'a result of rank 9',
    types: [T('int32', [1, 1, 1, 1, 1, 1, 1, 1])],
    attrs: { depth: 2 },
    error: /^result float32\[1,1,1,1,1,1,1,1,2\] has rank 9, more than 8$/,
  },
];

const RUN_ERRORS: RunErrorCase[] = [
  {
    op: 'slice',
    what: 'an unknown dim too short at run time',
    args: [f32(X, [null, 3])],
    attrs: { begin: [1, 0], size: [2, -1] },
    error: /^attr size: 1\+2 is past the end of dimension 0 \(size 2\)$/,
  },
  {
    op: 'gather',
    what: 'an index past the end',
    args: [f32(R), i32([0, 3])],
    error: /^arg 1: index 3 is out of range for dimension 0 of size 3$/,
  },
  {
    op: 'gather',
    what: 'a negative index',
    args: [f32(R), i32([-1])],
    error: /^arg 1: index -1 is out of range/,
  },
];

testOpTable({ ok: OK, bad: BAD, runErrors: RUN_ERRORS });

test('one_hot depth must be at least 1, in the schema and in infer', () => {
  expect(schemaErrors('one_hot', { depth: 0 })).not.toEqual([]);
  expect(inferError('one_hot', [T('int32', [2])], { depth: 0 })).toBe('attr depth: 0 is less than 1');
});

test('one_hot and gather refuse results over the element limit', () => {
  const ctx = { ...TEST_CTX, maxTensorElements: 5 };
  expect(runError('one_hot', [i32([0, 1], [null])], { depth: 3 }, ctx)).toMatch(
    /^result has 6 elements, more than the limit of 5 \(shape \[2,3\]\)$/,
  );
  expect(runError('gather', [f32(R), i32([0, 1, 2], [null])], {}, ctx)).toMatch(
    /^result has 6 elements, more than the limit of 5 \(shape \[3,2\]\)$/,
  );
});

test.each([
  ['slice', { begin: [0] }],
  ['slice', { begin: [-1], size: [1] }],
  ['slice', { begin: [0], size: [-2] }],
  ['gather', { axis: 'rows' }],
  ['one_hot', {}],
  ['one_hot', { depth: 2, on: 1 }],
])('%s schema rejects %j', (op, attrs) => {
  expect(schemaErrors(op, attrs)).not.toEqual([]);
});

test('every indexing op has success and failure cases', () => {
  for (const { name } of INDEXING_OPS) {
    expect([name, OK.some((c) => c.op === name), BAD.some((c) => c.op === name)]).toEqual([name, true, true]);
  }
});
