import { initBackend } from '../backend';
import { tensorType as T } from '../types';
import { SELECTION_OPS } from './comparison';
import { bool, f32, i32, schemaErrors, type BadCase, type OkCase } from './testing';
import { testOpTable } from './op-table.jest';

beforeAll(() => initBackend());

const COMPARISONS = ['equal', 'not_equal', 'less', 'less_equal', 'greater', 'greater_equal'];
const [t, f] = [true, false];

const OK: OkCase[] = [
  {
    op: 'equal',
    what: 'float32 against a scalar',
    args: [f32([1, 2, 3]), f32(2)],
    type: T('bool', [3]),
    value: [f, t, f],
  },
  { op: 'equal', what: 'bool', args: [bool([t, f]), bool([t, t])], type: T('bool', [2]), value: [t, f] },
  { op: 'not_equal', what: 'int32', args: [i32([1, 2]), i32([1, 3])], type: T('bool', [2]), value: [f, t] },
  {
    op: 'less',
    what: 'bool orders false first',
    args: [bool([f, t]), bool([t, t])],
    type: T('bool', [2]),
    value: [t, f],
  },
  {
    op: 'less_equal',
    what: 'float32 with an unknown dim',
    args: [f32([1, 2, 3], [null]), f32([2])],
    type: T('bool', [null]),
    value: [t, t, f],
  },
  {
    op: 'greater',
    what: 'int32 broadcast',
    args: [i32([[1], [5]]), i32([2, 4])],
    type: T('bool', [2, 2]),
    value: [
      [f, f],
      [t, t],
    ],
  },
  {
    op: 'greater_equal',
    what: 'float32',
    args: [f32([1, 2, 3]), f32(2)],
    type: T('bool', [3]),
    value: [f, t, t],
  },
  {
    op: 'logical_and',
    what: 'broadcast',
    args: [bool([t, f]), bool([[t], [f]])],
    type: T('bool', [2, 2]),
    value: [
      [t, f],
      [f, f],
    ],
  },
  {
    op: 'logical_or',
    what: 'values',
    args: [bool([t, f, f]), bool([f, t, f])],
    type: T('bool', [3]),
    value: [t, t, f],
  },
  { op: 'logical_not', what: 'values', args: [bool([t, f], [null])], type: T('bool', [null]), value: [f, t] },
  {
    op: 'where',
    what: 'elementwise',
    args: [bool([t, f, t]), f32([1, 2, 3]), f32([10, 20, 30])],
    type: T('float32', [3]),
    value: [1, 20, 3],
  },
  {
    op: 'where',
    what: 'broadcasts all three',
    args: [bool([[t], [f]]), i32([1, 2]), i32(0)],
    type: T('int32', [2, 2]),
    value: [
      [1, 2],
      [0, 0],
    ],
  },
  {
    op: 'where',
    what: 'bool values, unknown dims',
    args: [bool([t, f], [null]), bool([t, t]), bool([f, f], [null])],
    type: T('bool', [2]),
    value: [t, f],
  },
  {
    op: 'clip_by_value',
    what: 'float32',
    args: [f32([-2, 0.5, 3])],
    attrs: { min: -1, max: 1 },
    type: T('float32', [3]),
    value: [-1, 0.5, 1],
  },
  {
    op: 'clip_by_value',
    what: 'int32 (WASM kernel writes float bits)',
    args: [i32([-7, 3, 9], [null])],
    attrs: { min: -1, max: 4 },
    type: T('int32', [null]),
    value: [-1, 3, 4],
  },
];

const BAD: BadCase[] = [
  ...COMPARISONS.map((op) => ({
    op,
    what: 'mixed dtypes',
    types: [T('int32', []), T('float32', [])],
    error: /^arg 1: dtype float32 is not int32/,
  })),
  {
    op: 'less',
    what: 'shapes that do not broadcast',
    types: [T('float32', [3]), T('float32', [2])],
    error: /does not broadcast/,
  },
  {
    op: 'logical_and',
    what: 'float32',
    types: [T('float32', [2]), T('bool', [2])],
    error: /^arg 0: dtype float32 is not bool$/,
  },
  {
    op: 'logical_or',
    what: 'int32',
    types: [T('bool', [2]), T('int32', [2])],
    error: /^arg 1: dtype int32 is not bool/,
  },
  { op: 'logical_not', what: 'int32', types: [T('int32', [2])], error: /^arg 0: dtype int32 is not bool$/ },
  {
    op: 'where',
    what: 'a float32 condition',
    types: [T('float32', [2]), T('float32', [2]), T('float32', [2])],
    error: /^arg 0: dtype float32 is not bool$/,
  },
  {
    op: 'where',
    what: 'branches of two dtypes',
    types: [T('bool', [2]), T('float32', [2]), T('int32', [2])],
    error: /^arg 2: dtype int32 is not float32/,
  },
  {
    op: 'where',
    what: 'shapes that do not broadcast',
    types: [T('bool', [3]), T('float32', [2]), T('float32', [2])],
    error: /^arg 1: shape \[2\] does not broadcast with arg 0's \[3\]/,
  },
  {
    op: 'clip_by_value',
    what: 'min above max',
    types: [T('float32', [2])],
    attrs: { min: 2, max: 1 },
    error: /^attr max: 1 is less than attr min 2$/,
  },
  {
    op: 'clip_by_value',
    what: 'a fractional bound for int32',
    types: [T('int32', [2])],
    attrs: { min: 0.5, max: 1 },
    error: /^attr min: 0.5 is not an int32/,
  },
  {
    op: 'clip_by_value',
    what: 'bool',
    types: [T('bool', [2])],
    attrs: { min: 0, max: 1 },
    error: /^arg 0: dtype bool is not float32 or int32$/,
  },
];

testOpTable({ ok: OK, bad: BAD });

test('clip_by_value needs both bounds', () => {
  expect(schemaErrors('clip_by_value', { min: 0 })).not.toEqual([]);
  expect(schemaErrors('clip_by_value', { min: 0, max: 1, mid: 0.5 })).not.toEqual([]);
});

test('every comparison, logical and selection op has success and failure cases', () => {
  for (const { name } of SELECTION_OPS) {
    expect([name, OK.some((c) => c.op === name), BAD.some((c) => c.op === name)]).toEqual([name, true, true]);
  }
});
