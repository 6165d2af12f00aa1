import { initBackend } from '../backend';
import { tensorType as T } from '../types';
import { NN_OPS } from './nn';
import { f32, schemaErrors, type BadCase, type OkCase } from './testing';
import { testOpTable } from './op-table.jest';

beforeAll(() => initBackend());

function softmax(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}
const logSoftmax = (v: number[]) => softmax(v).map(Math.log);

const OK: OkCase[] = [
  {
    op: 'softmax',
    what: 'a vector',
    args: [f32([1, 2, 3])],
    type: T('float32', [3]),
    value: softmax([1, 2, 3]),
  },
  {
    op: 'softmax',
    what: 'rows of an unknown batch',
    args: [
      f32(
        [
          [1, 2],
          [3, 3],
        ],
        [null, 2],
      ),
    ],
    type: T('float32', [null, 2]),
    value: [softmax([1, 2]), softmax([3, 3])],
  },
  {
    op: 'softmax',
    what: 'axis 0 (WASM only does the last axis)',
    args: [
      f32([
        [1, 2],
        [3, 3],
      ]),
    ],
    attrs: { axis: 0 },
    type: T('float32', [2, 2]),
    value: [
      [softmax([1, 3])[0]!, softmax([2, 3])[0]!],
      [softmax([1, 3])[1]!, softmax([2, 3])[1]!],
    ],
  },
  {
    op: 'log_softmax',
    what: 'the last axis',
    args: [
      f32([
        [1, 2],
        [3, 3],
      ]),
    ],
    attrs: { axis: -1 },
    type: T('float32', [2, 2]),
    value: [logSoftmax([1, 2]), logSoftmax([3, 3])],
  },
  {
    op: 'log_softmax',
    what: 'a middle axis of rank 3',
    args: [
      f32(
        [
          [
            [1, 5],
            [2, 6],
            [4, 7],
          ],
        ],
        [null, 3, 2],
      ),
    ],
    attrs: { axis: 1 },
    type: T('float32', [null, 3, 2]),
    value: [[0, 1, 2].map((i) => [logSoftmax([1, 2, 4])[i]!, logSoftmax([5, 6, 7])[i]!])],
  },
];

const BAD: BadCase[] = [
  { op: 'softmax', what: 'int32', types: [T('int32', [2])], error: /^arg 0: dtype int32 is not float32$/ },
  {
    op: 'softmax',
    what: 'a scalar',
    types: [T('float32', [])],
    error: /^attr axis: axis -1 is out of range \(a scalar has no axes\)$/,
  },
  {
    op: 'log_softmax',
    what: 'an axis out of range',
    types: [T('float32', [2, 2])],
    attrs: { axis: 2 },
    error: /^attr axis: axis 2 is out of range -2..1$/,
  },
  { op: 'log_softmax', what: 'bool', types: [T('bool', [2])], error: /^arg 0: dtype bool is not float32$/ },
];

testOpTable({ ok: OK, bad: BAD });

test('softmax schema rejects a fractional axis', () => {
  expect(schemaErrors('softmax', { axis: 0.5 })).not.toEqual([]);
});

test('every neural-net op has success and failure cases', () => {
  for (const { name } of NN_OPS) {
    expect([name, OK.some((c) => c.op === name), BAD.some((c) => c.op === name)]).toEqual([name, true, true]);
  }
});
