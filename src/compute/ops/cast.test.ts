import { initBackend } from '../backend';
import { tensorType as T } from '../types';
import { CAST_OPS } from './cast';
import { bool, f32, i32, inferError, runOp, schemaErrors, type BadCase, type OkCase } from './testing';
import { testOpTable } from './op-table.jest';

beforeAll(() => initBackend());

const [t, f] = [true, false];

const OK: OkCase[] = [
  {
    op: 'cast',
    what: 'float32 to int32 truncates toward zero',
    args: [f32([-7.5, 2.9, 0])],
    attrs: { dtype: 'int32' },
    type: T('int32', [3]),
    value: [-7, 2, 0],
  },
  {
    op: 'cast',
    what: 'float32 to bool is x != 0, NaN true',
    args: [f32([-7, 0, 0.5, NaN])],
    attrs: { dtype: 'bool' },
    type: T('bool', [4]),
    value: [t, f, t, t],
  },
  {
    op: 'cast',
    what: 'int32 to bool gives 0/1 (WASM copies the low byte)',
    args: [i32([-7, 0, 2, 256])],
    attrs: { dtype: 'bool' },
    type: T('bool', [4]),
    value: [t, f, t, t],
  },
  {
    op: 'cast',
    what: 'int32 to float32 rounds to float32 on every backend (the CPU backend kept the int32)',
    args: [i32([16777217, -16777219, 7])],
    attrs: { dtype: 'float32' },
    type: T('float32', [3]),
    value: [16777216, -16777220, 7],
    tol: 0,
  },
  {
    op: 'cast',
    what: 'bool to float32',
    args: [bool([t, f])],
    attrs: { dtype: 'float32' },
    type: T('float32', [2]),
    value: [1, 0],
  },
  {
    op: 'cast',
    what: 'bool to int32',
    args: [bool([[t, f]])],
    attrs: { dtype: 'int32' },
    type: T('int32', [1, 2]),
    value: [[1, 0]],
  },
  {
    op: 'cast',
    what: 'bool to bool',
    args: [bool([t, f])],
    attrs: { dtype: 'bool' },
    type: T('bool', [2]),
    value: [t, f],
  },
  {
    op: 'cast',
    what: 'int32 to float32 keeps unknown dims',
    args: [i32([[1, -2]], [null, 2])],
    attrs: { dtype: 'float32' },
    type: T('float32', [null, 2]),
    value: [[1, -2]],
  },
  {
    op: 'cast',
    what: 'float32 to float32',
    args: [f32(2.5)],
    attrs: { dtype: 'float32' },
    type: T('float32', []),
    value: 2.5,
  },
];

const BAD: BadCase[] = [
  { op: 'cast', what: 'a missing arg', types: [], attrs: { dtype: 'int32' }, error: /^arg 0: missing/ },
];

testOpTable({
  ok: OK,
  // float32 outside int32 would wrap (3e9 to -1294967296): an overflow error instead.
  runErrors: [
    {
      op: 'cast',
      what: '3e9 to int32',
      args: [f32([1, 3e9])],
      attrs: { dtype: 'int32' },
      error: /^int32 overflow: element 1 /,
    },
    {
      op: 'cast',
      // 2^31 - 1 is not a float32: it rounds to 2^31, which int32 cannot hold.
      what: '2^31 to int32',
      args: [f32([2147483647])],
      attrs: { dtype: 'int32' },
      error: /^int32 overflow: element 0 /,
    },
    {
      op: 'cast',
      what: '-2^31 - 256 to int32',
      args: [f32([-2147483904])],
      attrs: { dtype: 'int32' },
      error: /^int32 overflow: element 0 /,
    },
  ],
});

test('float32 casts to int32 at the int32 boundary are exact', () => {
  expect(runOp('cast', [f32([-2147483648, 2147483520, -7.9])], { dtype: 'int32' }).value).toEqual([
    -2147483648, 2147483520, -7,
  ]);
});

test.each(BAD)('$op rejects $what', (c) => {
  expect(inferError(c.op, c.types, c.attrs)).toMatch(c.error);
});

test.each([{}, { dtype: 'int64' }, { dtype: 'int32', shape: [] }])(
  'cast schema rejects attrs %j',
  (attrs) => {
    expect(schemaErrors('cast', attrs)).not.toEqual([]);
  },
);

test('every cast op has success and failure cases', () => {
  for (const { name } of CAST_OPS) {
    expect([name, OK.some((c) => c.op === name), BAD.some((c) => c.op === name)]).toEqual([name, true, true]);
  }
});
