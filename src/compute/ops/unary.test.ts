import { initBackend } from '../backend';
import { tensorType as T } from '../types';
import { empty, f32, i32, runOp, schemaErrors, type BadCase, type OkCase } from './testing';
import { testOpTable } from './op-table.jest';
import { UNARY_OPS } from './unary';

beforeAll(() => initBackend());

const NUMERIC_OPS = ['neg', 'abs', 'square', 'sign'];
const FLOAT_OPS = UNARY_OPS.map((op) => op.name).filter((n) => !NUMERIC_OPS.includes(n));

const OK: OkCase[] = [
  { op: 'neg', what: 'float32', args: [f32([1.5, -2])], type: T('float32', [2]), value: [-1.5, 2] },
  {
    op: 'neg',
    what: 'int32, unknown dim',
    args: [i32([3, -4], [null])],
    type: T('int32', [null]),
    value: [-3, 4],
  },
  { op: 'abs', what: 'int32', args: [i32([[-3, 4]])], type: T('int32', [1, 2]), value: [[3, 4]] },
  { op: 'abs', what: 'float32', args: [f32(-1.5)], type: T('float32', []), value: 1.5 },
  { op: 'square', what: 'int32', args: [i32([-3, 2])], type: T('int32', [2]), value: [9, 4] },
  { op: 'square', what: 'float32', args: [f32([1.5])], type: T('float32', [1]), value: [2.25] },
  { op: 'sign', what: 'int32', args: [i32([-5, 0, 7])], type: T('int32', [3]), value: [-1, 0, 1] },
  { op: 'sign', what: 'float32', args: [f32([-0.5, 0, 2])], type: T('float32', [3]), value: [-1, 0, 1] },
  { op: 'exp', what: 'values', args: [f32([0, 1])], type: T('float32', [2]), value: [1, Math.E] },
  {
    op: 'exp',
    what: 'an empty tensor',
    args: [empty('float32', [0, 3])],
    type: T('float32', [0, 3]),
    value: [],
  },
  {
    op: 'log',
    what: 'values',
    args: [f32([1, Math.E, 0])],
    type: T('float32', [3]),
    value: [0, 1, -Infinity],
  },
  { op: 'log1p', what: 'values', args: [f32([0, Math.E - 1])], type: T('float32', [2]), value: [0, 1] },
  { op: 'sqrt', what: 'values', args: [f32([4, 2.25])], type: T('float32', [2]), value: [2, 1.5] },
  { op: 'rsqrt', what: 'values', args: [f32([4, 0.25])], type: T('float32', [2]), value: [0.5, 2] },
  {
    op: 'relu',
    what: 'values',
    args: [f32([-1, 0, 2], [null])],
    type: T('float32', [null]),
    value: [0, 0, 2],
  },
  {
    op: 'sigmoid',
    what: 'values',
    args: [f32([0, 2])],
    type: T('float32', [2]),
    value: [0.5, 1 / (1 + Math.exp(-2))],
  },
  { op: 'tanh', what: 'values', args: [f32([0, 1])], type: T('float32', [2]), value: [0, Math.tanh(1)] },
  {
    op: 'softplus',
    what: 'values',
    args: [f32([0, 2])],
    type: T('float32', [2]),
    value: [Math.log(2), Math.log(1 + Math.exp(2))],
  },
  { op: 'floor', what: 'values', args: [f32([-1.5, 1.5, 2])], type: T('float32', [3]), value: [-2, 1, 2] },
  { op: 'ceil', what: 'values', args: [f32([-1.5, 1.5, 2])], type: T('float32', [3]), value: [-1, 2, 2] },
  {
    op: 'round',
    what: 'half to even',
    args: [f32([0.5, 1.5, 2.5, -0.5, -1.5, 1.2])],
    type: T('float32', [6]),
    value: [0, 2, 2, -0, -2, 1],
  },
];

const BAD: BadCase[] = [
  ...NUMERIC_OPS.map((op) => ({
    op,
    what: 'bool',
    types: [T('bool', [2])],
    error: /^arg 0: dtype bool is not float32 or int32$/,
  })),
  ...FLOAT_OPS.map((op) => ({
    op,
    what: 'int32',
    types: [T('int32', [null, 2])],
    error: /^arg 0: dtype int32 is not float32$/,
  })),
];

testOpTable({
  ok: OK,
  bad: BAD,
  // int32 results outside int32 are errors, never wrapped values (int-overflow.ts).
  runErrors: [
    { op: 'neg', what: 'int32 -2^31', args: [i32([1, -2147483648])], error: /^int32 overflow: element 1 / },
    { op: 'abs', what: 'int32 -2^31', args: [i32([-2147483648])], error: /^int32 overflow: element 0 / },
    { op: 'square', what: 'int32 46341', args: [i32([46340, 46341])], error: /^int32 overflow: element 1 / },
  ],
});

test.each([
  ['neg', [2147483647], [-2147483647]],
  ['abs', [-2147483647], [2147483647]],
  ['square', [-46340], [2147395600]],
] as const)('int32 %s of %j is exact at the boundary', (op, x, value) => {
  expect(runOp(op, [i32([...x])]).value).toEqual(value);
});

test('unary ops take no attrs', () => {
  expect(schemaErrors('exp', { axis: 0 })).not.toEqual([]);
});

test('every unary op has success and failure cases', () => {
  for (const { name } of UNARY_OPS) {
    expect([name, OK.some((c) => c.op === name), BAD.some((c) => c.op === name)]).toEqual([name, true, true]);
  }
});
