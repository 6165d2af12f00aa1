import { initBackend } from '../backend';
import { tensorType as T } from '../types';
import { LINALG_OPS } from './linalg';
import {
  empty,
  f32,
  runError,
  schemaErrors,
  TEST_CTX,
  type BadCase,
  type OkCase,
  type RunErrorCase,
} from './testing';
import { testOpTable } from './op-table.jest';

beforeAll(() => initBackend());

const A = [
  [1, 2],
  [3, 4],
];
const B = [
  [5, 6],
  [7, 8],
];
const AB = [
  [19, 22],
  [43, 50],
];
const transpose = (m: number[][]) => m[0]!.map((_, j) => m.map((row) => row[j]!));

const OK: OkCase[] = [
  { op: 'matmul', what: 'rank 2', args: [f32(A), f32(B)], type: T('float32', [2, 2]), value: AB },
  {
    op: 'matmul',
    what: 'an unknown batch of rows',
    args: [
      f32([[1, 2]], [null, 2]),
      f32([
        [1, 0, 1],
        [0, 1, 1],
      ]),
    ],
    type: T('float32', [null, 3]),
    value: [[1, 2, 3]],
  },
  {
    op: 'matmul',
    what: 'transpose_a',
    args: [f32(transpose(A)), f32(B)],
    attrs: { transpose_a: true },
    type: T('float32', [2, 2]),
    value: AB,
  },
  {
    op: 'matmul',
    what: 'transpose_b',
    args: [f32(A), f32(transpose(B))],
    attrs: { transpose_b: true },
    type: T('float32', [2, 2]),
    value: AB,
  },
  {
    op: 'matmul',
    what: 'both transposed, rectangular',
    args: [f32([[1], [2]]), f32([[3, 4]], [1, null])],
    attrs: { transpose_a: true, transpose_b: true },
    type: T('float32', [1, 1]),
    value: [[1 * 3 + 2 * 4]],
  },
  {
    op: 'matmul',
    what: 'batched, the unknown batch takes the known one',
    args: [
      f32([[[1, 2]], [[3, 4]]], [null, 1, 2]),
      f32([
        [[1], [1]],
        [[2], [0]],
      ]),
    ],
    type: T('float32', [2, 1, 1]),
    value: [[[3]], [[6]]],
  },
  {
    op: 'matmul',
    what: 'an empty inner dimension gives zeros (XNNPACK returns garbage)',
    args: [empty('float32', [2, 0], [2, null]), empty('float32', [0, 3], [null, 3])],
    type: T('float32', [2, 3]),
    value: [
      [0, 0, 0],
      [0, 0, 0],
    ],
  },
];

const BAD: BadCase[] = [
  {
    op: 'matmul',
    what: 'int32 (WASM has no integer matmul)',
    types: [T('int32', [2, 2]), T('int32', [2, 2])],
    error: /^arg 0: dtype int32 is not float32$/,
  },
  {
    op: 'matmul',
    what: 'rank 1',
    types: [T('float32', [3]), T('float32', [3, 1])],
    error: /^arg 0: rank 1 is not 2 or 3 \(shape \[3\]\)$/,
  },
  {
    op: 'matmul',
    what: 'mixed ranks',
    types: [T('float32', [2, 3]), T('float32', [1, 3, 2])],
    error: /^arg 1: rank 3 is not 2, the rank of arg 0$/,
  },
  {
    op: 'matmul',
    what: 'inner dimensions that differ',
    types: [T('float32', [null, 3]), T('float32', [2, 3])],
    error: /^arg 1: inner dimensions do not agree: \[\?,3\] x \[2,3\] \(3 vs 2\)$/,
  },
  {
    op: 'matmul',
    what: 'inner dimensions that differ once transposed',
    types: [T('float32', [2, 3]), T('float32', [2, 3])],
    attrs: { transpose_b: true, transpose_a: true },
    error: /^arg 1: inner dimensions do not agree/,
  },
  {
    op: 'matmul',
    what: 'batch dimensions that differ (no batch broadcasting)',
    types: [T('float32', [2, 1, 2]), T('float32', [1, 2, 1])],
    error: /^arg 1: batch dimension 1 is not arg 0's 2$/,
  },
];

const RUN_ERRORS: RunErrorCase[] = [
  {
    op: 'matmul',
    what: 'unknown inner dimensions that differ at run time',
    args: [f32([[1, 2, 3]], [1, null]), f32(A, [null, 2])],
    error: /^arg 1: inner dimensions do not agree \(3 vs 2\)$/,
  },
  {
    op: 'matmul',
    what: 'unknown batches that differ at run time',
    args: [f32([[[1]], [[2]]], [null, 1, 1]), f32([[[1]]], [null, 1, 1])],
    error: /^arg 1: batch dimension 1 is not arg 0's 2$/,
  },
];

testOpTable({ ok: OK, bad: BAD, runErrors: RUN_ERRORS });

test('matmul refuses a result over the element limit before computing it', () => {
  const ctx = { ...TEST_CTX, maxTensorElements: 8 };
  expect(runError('matmul', [f32([[1], [2], [3]], [null, 1]), f32([[1, 2, 3]], [1, null])], {}, ctx)).toMatch(
    /^result has 9 elements, more than the limit of 8 \(shape \[3,3\]\)$/,
  );
});

test('matmul schema rejects unknown attrs', () => {
  expect(schemaErrors('matmul', { adjoint_a: true })).not.toEqual([]);
});

test('every linear algebra op has success and failure cases', () => {
  for (const { name } of LINALG_OPS) {
    expect([name, OK.some((c) => c.op === name), BAD.some((c) => c.op === name)]).toEqual([name, true, true]);
  }
});
