import { initBackend } from '../backend';
import { tensorType as T } from '../types';
import { CONSTANT_OPS } from './constants';
import { bool, f32, i32, runError, schemaErrors, TEST_CTX, type BadCase, type OkCase } from './testing';
import { testOpTable } from './op-table.jest';

beforeAll(() => initBackend());

const [t, f] = [true, false];

const OK: OkCase[] = [
  {
    op: 'const',
    what: 'a float32 filled to a shape',
    args: [],
    attrs: { dtype: 'float32', shape: [2, 2], value: 1.5 },
    type: T('float32', [2, 2]),
    value: [
      [1.5, 1.5],
      [1.5, 1.5],
    ],
  },
  {
    op: 'const',
    what: 'an int32 flat array',
    args: [],
    attrs: { dtype: 'int32', shape: [2, 2], value: [1, 2, 3, -4] },
    type: T('int32', [2, 2]),
    value: [
      [1, 2],
      [3, -4],
    ],
  },
  {
    op: 'const',
    what: 'bools given as booleans and 0/1',
    args: [],
    attrs: { dtype: 'bool', shape: [4], value: [true, 0, 1, false] },
    type: T('bool', [4]),
    value: [t, f, t, f],
  },
  {
    op: 'const',
    what: 'a bool scalar',
    args: [],
    attrs: { dtype: 'bool', shape: [], value: true },
    type: T('bool', []),
    value: t,
  },
  {
    op: 'const',
    what: 'an empty tensor',
    args: [],
    attrs: { dtype: 'float32', shape: [0], value: [] },
    type: T('float32', [0]),
    value: [],
  },
  {
    op: 'zeros_like',
    what: 'float32 with an unknown dim',
    args: [f32([[1, 2]], [null, 2])],
    type: T('float32', [null, 2]),
    value: [[0, 0]],
  },
  { op: 'zeros_like', what: 'bool', args: [bool([t, t])], type: T('bool', [2]), value: [f, f] },
  { op: 'ones_like', what: 'int32', args: [i32([5, 6, 7])], type: T('int32', [3]), value: [1, 1, 1] },
  { op: 'ones_like', what: 'bool', args: [bool([f])], type: T('bool', [1]), value: [t] },
];

OK.push({
  op: 'const',
  what: 'float32 infinities, spelled "inf" and "-inf"',
  args: [],
  attrs: { dtype: 'float32', shape: [3], value: ['-inf', 0.5, 'inf'] },
  type: T('float32', [3]),
  value: [-Infinity, 0.5, Infinity],
});

const BAD: BadCase[] = [
  {
    op: 'const',
    what: 'an int32 infinity',
    types: [],
    attrs: { dtype: 'int32', shape: [], value: 'inf' },
    error: /^attr value: inf is not an int32$/,
  },

  {
    op: 'const',
    what: 'an array of the wrong length',
    types: [],
    attrs: { dtype: 'float32', shape: [2, 2], value: [1, 2, 3] },
    error: /^attr value: has 3 elements, shape \[2,2\] needs 4$/,
  },
  {
    op: 'const',
    what: 'a fraction for int32',
    types: [],
    attrs: { dtype: 'int32', shape: [2], value: [1, 1.5] },
    error: /^attr value: element 1: 1.5 is not an int32$/,
  },
  {
    op: 'const',
    what: 'an int32 out of range',
    types: [],
    attrs: { dtype: 'int32', shape: [], value: 3e9 },
    error: /^attr value: 3000000000 is not an int32$/,
  },
  {
    op: 'const',
    what: 'a number other than 0/1 for bool',
    types: [],
    attrs: { dtype: 'bool', shape: [], value: 2 },
    error: /^attr value: 2 is not a boolean \(or 0\/1\)$/,
  },
  {
    op: 'const',
    what: 'a boolean for float32',
    types: [],
    attrs: { dtype: 'float32', shape: [1], value: [true] },
    error: /^attr value: element 0: true is not a float32 \(a finite number, "inf" or "-inf"\)$/,
  },
  {
    op: 'const',
    what: 'a float32 overflow',
    types: [],
    attrs: { dtype: 'float32', shape: [], value: 1e39 },
    error: /^attr value: 1e\+39 is not a float32 \(a finite number, "inf" or "-inf"\)$/,
  },
  { op: 'zeros_like', what: 'a missing arg', types: [], error: /^arg 0: missing/ },
  { op: 'ones_like', what: 'a missing arg', types: [], error: /^arg 0: missing/ },
];

testOpTable({ ok: OK, bad: BAD });

test.each([
  { dtype: 'float32', shape: [2] },
  { dtype: 'float32', shape: [null], value: 1 },
  { dtype: 'float32', shape: [-1], value: 1 },
  { dtype: 'float32', shape: [2], value: [[1, 2]] },
  { dtype: 'float32', shape: [], value: 'one' },
  { dtype: 'float32', shape: [], value: 'nan' },
  { dtype: 'float32', shape: [2], value: ['inf', 'Infinity'] },
  { dtype: 'float32', shape: [], value: 1, name: 'x' },
])('const schema rejects %j', (attrs) => {
  expect(schemaErrors('const', attrs)).not.toEqual([]);
});

test('const refuses to allocate past the element limit', () => {
  const ctx = { ...TEST_CTX, maxTensorElements: 100 };
  expect(runError('const', [], { dtype: 'float32', shape: [10, 11], value: 0 }, ctx)).toMatch(
    /more than the limit of 100/,
  );
});

test('every constant op has success and failure cases', () => {
  for (const { name } of CONSTANT_OPS) {
    expect([name, OK.some((c) => c.op === name), BAD.some((c) => c.op === name)]).toEqual([name, true, true]);
  }
});
