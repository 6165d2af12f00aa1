import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend';
import { tensorType as T } from '../types';
import { ARITHMETIC_OPS } from './arithmetic';
import { f32, i32, runError, runOp, TEST_CTX, type BadCase, type OkCase, type RunErrorCase } from './testing';

const INT32_MAX = 2147483647;
const INT32_MIN = -2147483648;
import { testOpTable } from './op-table.jest';

beforeAll(() => initBackend());

const NUMERIC_OPS = ['add', 'sub', 'mul', 'maximum', 'minimum', 'squared_difference', 'floor_div', 'mod'];

const OK: OkCase[] = [
  {
    op: 'add',
    what: 'broadcasts a row',
    args: [
      f32([
        [1, 2, 3],
        [4, 5, 6],
      ]),
      f32([10, 20, 30]),
    ],
    type: T('float32', [2, 3]),
    value: [
      [11, 22, 33],
      [14, 25, 36],
    ],
  },
  {
    op: 'add',
    what: 'unknown batch against a known row',
    args: [
      f32(
        [
          [1, 2, 3],
          [4, 5, 6],
        ],
        [null, 3],
      ),
      f32([10, 20, 30]),
    ],
    type: T('float32', [null, 3]),
    value: [
      [11, 22, 33],
      [14, 25, 36],
    ],
  },
  {
    op: 'add',
    what: 'unknown against 1 stays unknown',
    args: [i32([1, 2], [null]), i32([5], [1])],
    type: T('int32', [null]),
    value: [6, 7],
  },
  {
    op: 'add',
    what: 'unknown against n is n',
    args: [i32([1, 2], [null]), i32([5, 6])],
    type: T('int32', [2]),
    value: [6, 8],
  },
  {
    op: 'add',
    what: 'rank 3 both ways',
    args: [f32([[[1, 2, 3]], [[4, 5, 6]]]), f32([[[10], [20]]])],
    type: T('float32', [2, 2, 3]),
    value: [
      [
        [11, 12, 13],
        [21, 22, 23],
      ],
      [
        [14, 15, 16],
        [24, 25, 26],
      ],
    ],
  },
  { op: 'sub', what: 'float32', args: [f32([5, 1.5]), f32(2)], type: T('float32', [2]), value: [3, -0.5] },
  { op: 'sub', what: 'int32', args: [i32([5, 1]), i32([7, -1])], type: T('int32', [2]), value: [-2, 2] },
  {
    op: 'mul',
    what: 'int32',
    args: [i32([[1, -2]]), i32([[3], [4]])],
    type: T('int32', [2, 2]),
    value: [
      [3, -6],
      [4, -8],
    ],
  },
  {
    op: 'mul',
    what: 'float32',
    args: [f32([1.5, -2]), f32([2, 0.25])],
    type: T('float32', [2]),
    value: [3, -0.5],
  },
  {
    op: 'maximum',
    what: 'int32',
    args: [i32([1, 5, -3]), i32([2, 2, -4])],
    type: T('int32', [3]),
    value: [2, 5, -3],
  },
  {
    op: 'minimum',
    what: 'float32',
    args: [f32([1, 5.5, -3]), f32(2)],
    type: T('float32', [3]),
    value: [1, 2, -3],
  },
  {
    op: 'squared_difference',
    what: 'int32',
    args: [i32([1, 5]), i32([4, 1])],
    type: T('int32', [2]),
    value: [9, 16],
  },
  {
    op: 'squared_difference',
    what: 'float32',
    args: [f32([0.5]), f32([2])],
    type: T('float32', [1]),
    value: [2.25],
  },
  {
    op: 'floor_div',
    what: 'int32 rounds toward -inf',
    args: [i32([-7, 7, 9]), i32([2, -2, 3])],
    type: T('int32', [3]),
    value: [-4, -4, 3],
  },
  {
    op: 'floor_div',
    what: 'float32',
    args: [f32([-7.5, 7]), f32(2)],
    type: T('float32', [2]),
    value: [-4, 3],
  },
  {
    op: 'mod',
    what: 'int32 takes the divisor sign',
    args: [i32([-7, 7, 9]), i32([2, -2, 4])],
    type: T('int32', [3]),
    value: [1, -1, 1],
  },
  {
    op: 'mod',
    what: 'float32',
    args: [f32([-7.5, 7.25]), f32(2)],
    type: T('float32', [2]),
    value: [0.5, 1.25],
  },
  {
    op: 'div',
    what: 'float32',
    args: [f32([1, -3]), f32([4, 2])],
    type: T('float32', [2]),
    value: [0.25, -1.5],
  },
  {
    op: 'div',
    what: 'by zero is inf',
    args: [f32([1]), f32([0])],
    type: T('float32', [1]),
    value: [Infinity],
  },
  { op: 'pow', what: 'float32', args: [f32([2, 9]), f32([3, 0.5])], type: T('float32', [2]), value: [8, 3] },
];

const BAD: BadCase[] = [
  ...NUMERIC_OPS.map((op) => ({
    op,
    what: 'mixed dtypes',
    types: [T('float32', [2]), T('int32', [2])],
    error: /^arg 1: dtype int32 is not float32/,
  })),
  ...NUMERIC_OPS.map((op) => ({
    op,
    what: 'bool',
    types: [T('bool', [2]), T('bool', [2])],
    error: /^arg 0: dtype bool is not float32 or int32$/,
  })),
  ...['div', 'pow'].map((op) => ({
    op,
    what: 'int32',
    types: [T('int32', [2]), T('int32', [2])],
    error: /^arg 0: dtype int32 is not float32$/,
  })),
  {
    op: 'add',
    what: 'shapes that do not broadcast',
    types: [T('float32', [2, 3]), T('float32', [4, 3])],
    error: /^arg 1: shape \[4,3\] does not broadcast with arg 0's \[2,3\]/,
  },
  {
    op: 'mul',
    what: 'shapes that do not broadcast with an unknown dim',
    types: [T('float32', [null, 3]), T('float32', [2])],
    error: /^arg 1: shape \[2\] does not broadcast/,
  },
];

const RUN_ERRORS: RunErrorCase[] = [
  {
    op: 'floor_div',
    what: 'int32 by zero',
    args: [i32([1, 2]), i32([1, 0])],
    error: /^arg 1: integer division by zero$/,
  },
  {
    op: 'mod',
    what: 'int32 by zero',
    args: [i32([1, 2]), i32(0)],
    error: /^arg 1: integer division by zero$/,
  },
  {
    op: 'add',
    what: 'unknown dims that disagree at run time',
    args: [f32([1, 2], [null]), f32([1, 2, 3], [null])],
    error: /does not broadcast/,
  },
  // int32 results outside [-2^31, 2^31-1] are errors, never wrapped values (int-overflow.ts).
  ...(
    [
      ['add', 'int32 2^31-1 + 1', [i32([10, INT32_MAX]), i32([10, 1])], 1],
      ['add', 'int32 -2^31 + -1 broadcast', [i32([[0], [INT32_MIN]]), i32([-1])], 1],
      ['add', 'int32 (2^31-1) + (2^31-1)', [i32(INT32_MAX), i32(INT32_MAX)], 0],
      ['sub', 'int32 -2^31 - 1', [i32([INT32_MIN]), i32([1])], 0],
      ['sub', 'int32 0 - -2^31', [i32([5, 0]), i32([1, INT32_MIN])], 1],
      ['mul', 'int32 100000 * 100000 (wraps to 1410065408)', [i32([100000]), i32([100000])], 0],
      ['mul', 'int32 65536 * 65536 (wraps to 0)', [i32([3, 65536]), i32(65536)], 1],
      ['mul', 'int32 -2^31 * -1', [i32([INT32_MIN]), i32([-1])], 0],
      ['squared_difference', 'int32 (2^31-1 - -2^31)^2', [i32([0, INT32_MAX]), i32([0, INT32_MIN])], 1],
      ['floor_div', 'int32 -2^31 // -1', [i32([INT32_MIN]), i32([-1])], 0],
    ] as const
  ).map(([op, what, args, at]): RunErrorCase => ({
    op,
    what,
    args,
    error: new RegExp(`^int32 overflow: element ${at} of the result is about -?\\d`),
  })),
];

testOpTable({ ok: OK, bad: BAD, runErrors: RUN_ERRORS });

describe('int32 overflow', () => {
  test.each([
    ['add', [i32([INT32_MAX, INT32_MIN]), i32([0, 0])], [INT32_MAX, INT32_MIN]],
    ['add', [i32([INT32_MAX - 10]), i32([10])], [INT32_MAX]],
    ['add', [i32([10]), i32([10])], [20]],
    ['sub', [i32([-1]), i32([INT32_MAX])], [INT32_MIN]],
    ['mul', [i32([-65536]), i32([32768])], [INT32_MIN]],
    ['mul', [i32([46340]), i32([46340])], [2147395600]],
    ['squared_difference', [i32([46340]), i32([0])], [2147395600]],
    ['floor_div', [i32([INT32_MIN]), i32([1])], [INT32_MIN]],
  ] as const)('%s up to the int32 boundary is exact: %j', (op, args, value) => {
    const r = runOp(op, args);
    expect(r.value).toEqual(value);
    expect(r.leaked).toBe(0);
  });

  test('a refused overflow leaks no tensor', () => {
    const before = tf.memory().numTensors;
    expect(runError('add', [i32([INT32_MAX, 1]), i32([1, 1])])).toMatch(/int32 overflow/);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('float32 ops are unchanged: no overflow check, IEEE results', () => {
    expect(runOp('add', [f32([3.4e38]), f32([3.4e38])]).value).toEqual([Infinity]);
    expect(runOp('mul', [f32([2 ** 31]), f32([2 ** 31])]).value).toEqual([2 ** 62]);
    expect(runOp('sub', [f32([-3.4e38]), f32([3.4e38])]).value).toEqual([-Infinity]);
  });
});

test('a broadcast result over the element limit fails before allocating', () => {
  const ctx = { ...TEST_CTX, maxTensorElements: 10 };
  const big = Array.from({ length: 4 }, (_, i) => i);
  expect(
    runError(
      'add',
      [
        f32(
          big.map((v) => [v]),
          [null, 1],
        ),
        f32([big], [1, null]),
      ],
      {},
      ctx,
    ),
  ).toMatch(/^result has 16 elements, more than the limit of 10 \(shape \[4,4\]\)$/);
});

test('every arithmetic op has success and failure cases', () => {
  for (const { name } of ARITHMETIC_OPS) {
    expect([name, OK.some((c) => c.op === name), BAD.some((c) => c.op === name)]).toEqual([name, true, true]);
  }
});
