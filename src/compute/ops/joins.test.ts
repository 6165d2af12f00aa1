import { initBackend } from '../backend';
import { tensorType as T } from '../types';
import { JOIN_OPS } from './joins';
import {
  bool,
  f32,
  i32,
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

const OK: OkCase[] = [
  {
    op: 'concat',
    what: 'columns',
    args: [
      f32([[1], [2]]),
      f32([
        [3, 4],
        [5, 6],
      ]),
    ],
    attrs: { axis: 1 },
    type: T('float32', [2, 3]),
    value: [
      [1, 3, 4],
      [2, 5, 6],
    ],
  },
  {
    op: 'concat',
    what: 'a negative axis, three int32 args',
    args: [i32([1]), i32([2, 3]), i32([4])],
    attrs: { axis: -1 },
    type: T('int32', [4]),
    value: [1, 2, 3, 4],
  },
  {
    op: 'concat',
    what: 'one arg',
    args: [bool([t, f])],
    attrs: { axis: 0 },
    type: T('bool', [2]),
    value: [t, f],
  },
  {
    op: 'concat',
    what: 'an unknown length along the axis',
    args: [f32([[1, 2]], [null, 2]), f32([[3, 4]])],
    attrs: { axis: 0 },
    type: T('float32', [null, 2]),
    value: [
      [1, 2],
      [3, 4],
    ],
  },
  {
    op: 'concat',
    what: 'an unknown dim off the axis takes the known one',
    args: [f32([[1], [2]], [null, 1]), f32([[3], [4]])],
    attrs: { axis: 1 },
    type: T('float32', [2, 2]),
    value: [
      [1, 3],
      [2, 4],
    ],
  },
  {
    op: 'stack',
    what: 'rows',
    args: [f32([1, 2]), f32([3, 4])],
    type: T('float32', [2, 2]),
    value: [
      [1, 2],
      [3, 4],
    ],
  },
  {
    op: 'stack',
    what: 'the last axis',
    args: [i32([1, 2]), i32([3, 4]), i32([5, 6])],
    attrs: { axis: -1 },
    type: T('int32', [2, 3]),
    value: [
      [1, 3, 5],
      [2, 4, 6],
    ],
  },
  {
    op: 'stack',
    what: 'unknown dims unify',
    args: [f32([1, 2, 3], [null]), f32([4, 5, 6])],
    attrs: { axis: 1 },
    type: T('float32', [3, 2]),
    value: [
      [1, 4],
      [2, 5],
      [3, 6],
    ],
  },
  { op: 'stack', what: 'one bool scalar', args: [bool(t)], type: T('bool', [1]), value: [t] },
];

const BAD: BadCase[] = [
  {
    op: 'concat',
    what: 'mixed dtypes',
    types: [T('float32', [2]), T('int32', [2])],
    attrs: { axis: 0 },
    error: /^arg 1: dtype int32 is not float32/,
  },
  {
    op: 'concat',
    what: 'mixed ranks',
    types: [T('float32', [2, 1]), T('float32', [2])],
    attrs: { axis: 0 },
    error: /^arg 1: rank 1 is not 2, the rank of arg 0$/,
  },
  {
    op: 'concat',
    what: 'dims that differ off the axis',
    types: [T('float32', [2, 2]), T('float32', [null, 2]), T('float32', [3, 2])],
    attrs: { axis: 1 },
    error:
      /^arg 2: shape \[3,2\] does not match \[2,2\] of arg 0 in dimension 0 \(only the concat axis may differ\)$/,
  },
  {
    op: 'concat',
    what: 'scalars',
    types: [T('float32', []), T('float32', [])],
    attrs: { axis: 0 },
    error: /^attr axis: axis 0 is out of range \(a scalar has no axes\)$/,
  },
  {
    op: 'stack',
    what: 'shapes that differ',
    types: [T('float32', [2]), T('float32', [3])],
    error:
      /^arg 1: shape \[3\] does not match \[2\] of arg 0 in dimension 0 \(stacked tensors must have one shape\)$/,
  },
  {
    op: 'stack',
    what: 'mixed dtypes',
    types: [T('bool', [2]), T('int32', [2])],
    error: /^arg 1: dtype int32 is not bool/,
  },
  {
    op: 'stack',
    what: 'an axis out of range',
    types: [T('float32', [2]), T('float32', [2])],
    attrs: { axis: 2 },
    error: /^attr axis: axis 2 is out of range -2..1$/,
  },
];

const RUN_ERRORS: RunErrorCase[] = [
  {
    op: 'concat',
    what: 'unknown dims that differ at run time',
    args: [f32([[1, 2]], [1, null]), f32([[1, 2, 3]], [1, null])],
    attrs: { axis: 0 },
    error: /^arg 1: shape \[1,3\] does not match \[1,2\] of arg 0 in dimension 1/,
  },
  {
    op: 'stack',
    what: 'unknown dims that differ at run time',
    args: [f32([1, 2], [null]), f32([1], [null])],
    error: /^arg 1: shape \[1\] does not match \[2\]/,
  },
];

testOpTable({ ok: OK, bad: BAD, runErrors: RUN_ERRORS });

test('concat needs an axis', () => {
  expect(schemaErrors('concat', {})).not.toEqual([]);
});

test('every join op has success and failure cases', () => {
  for (const { name } of JOIN_OPS) {
    expect([name, OK.some((c) => c.op === name), BAD.some((c) => c.op === name)]).toEqual([name, true, true]);
  }
});

test('concat and stack refuse results over the element limit', () => {
  const ctx = { ...TEST_CTX, maxTensorElements: 5 };
  expect(runError('concat', [f32([1, 2, 3], [null]), f32([4, 5, 6], [null])], { axis: 0 }, ctx)).toMatch(
    /^result has 6 elements, more than the limit of 5 \(shape \[6\]\)$/,
  );
  expect(runError('stack', [f32([1, 2, 3], [null]), f32([4, 5, 6], [null])], {}, ctx)).toMatch(
    /^result has 6 elements, more than the limit of 5 \(shape \[2,3\]\)$/,
  );
});
