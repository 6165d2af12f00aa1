import { isInt32, tensorType as T, type Shape } from '../types';
import { OpError } from './op';
import {
  broadcastShapes,
  checkDtype,
  checkElements,
  OpLimitError,
  checkSameDtype,
  normalizeAxes,
  normalizeAxis,
  result,
  unifyDim,
} from './shape-infer';
import { TEST_CTX, thrown } from './testing';

const message = (f: () => unknown) => {
  const e = thrown(f);
  return e instanceof OpError ? e.message : `(not an OpError: ${String(e)})`;
};

test.each<[Shape[], Shape]>([
  [
    [[2, 3], [3]],
    [2, 3],
  ],
  [
    [[null, 3], [3]],
    [null, 3],
  ],
  [[[null], [1]], [null]],
  [[[null], [5]], [5]],
  [[[null], [null]], [null]],
  [[[1], [1]], [1]],
  [[[], [2]], [2]],
  [[[], []], []],
  [
    [
      [null, 1],
      [1, null],
    ],
    [null, null],
  ],
  [
    [
      [2, 1],
      [1, 3],
      [4, 1, 1],
    ],
    [4, 2, 3],
  ],
  [[[0], [1]], [0]],
])('broadcastShapes(%j) is %j', (shapes, out) => {
  expect(broadcastShapes(shapes)).toEqual(out);
});

test.each<[Shape[], string]>([
  [[[2], [3]], "arg 1: shape [3] does not broadcast with arg 0's [2] (3 vs 2 in dimension -1)"],
  [
    [
      [4, 2],
      [null, 2],
      [3, 1],
    ],
    "arg 2: shape [3,1] does not broadcast with arg 0's [4,2] (3 vs 4 in dimension -2)",
  ],
  [[[0], [2]], "arg 1: shape [2] does not broadcast with arg 0's [0] (2 vs 0 in dimension -1)"],
])('broadcastShapes(%j) fails', (shapes, error) => {
  expect(message(() => broadcastShapes(shapes))).toBe(error);
});

test.each([
  [-1, 3, 2],
  [0, 3, 0],
  [-3, 3, 0],
  [2, 3, 2],
])('normalizeAxis(%d, rank %d) is %d', (axis, rank, out) => {
  expect(normalizeAxis(axis, rank)).toBe(out);
});

test.each([
  [3, 3, 'axis', 'attr axis: axis 3 is out of range -3..2'],
  [-4, 3, 'axis', 'attr axis: axis -4 is out of range -3..2'],
  [0, 0, 'dim', 'attr dim: axis 0 is out of range (a scalar has no axes)'],
])('normalizeAxis(%d, rank %d) names attr %s', (axis, rank, attr, error) => {
  expect(message(() => normalizeAxis(axis, rank, attr))).toBe(error);
});

test('normalizeAxes defaults to all, sorts, and rejects repeats', () => {
  expect(normalizeAxes(undefined, 3)).toEqual([0, 1, 2]);
  expect(normalizeAxes([], 3)).toEqual([]);
  expect(normalizeAxes([-1, 0], 3)).toEqual([0, 2]);
  expect(message(() => normalizeAxes([0, -2], 2))).toBe('attr axes: axis 0 is given more than once');
});

test.each([
  [null, 3, 3],
  [3, null, 3],
  [null, null, null],
  [2, 2, 2],
  [2, 3, undefined],
])('unifyDim(%p, %p) is %p', (a, b, out) => {
  expect(unifyDim(a, b)).toBe(out);
});

test('dtype checks name the arg and the dtypes', () => {
  const args = [T('float32', [2]), T('int32', [2]), T('bool', [])];
  expect(checkDtype(args, 0, ['float32'])).toBe(args[0]);
  expect(message(() => checkDtype(args, 1, ['float32']))).toBe('arg 1: dtype int32 is not float32');
  expect(message(() => checkDtype(args, 2, ['float32', 'int32']))).toBe(
    'arg 2: dtype bool is not float32 or int32',
  );
  expect(message(() => checkDtype(args, 3, ['float32']))).toBe('arg 3: missing (got 3 args)');
  expect(message(() => checkSameDtype(args))).toBe(
    'arg 1: dtype int32 is not float32 (the dtype of arg 0; use cast)',
  );
});

test('result refuses ranks above 8', () => {
  expect(result('int32', [1, 2])).toEqual(T('int32', [1, 2]));
  expect(message(() => result('bool', Array(9).fill(1)))).toBe(
    'result bool[1,1,1,1,1,1,1,1,1] has rank 9, more than 8',
  );
});

test('isInt32 accepts exactly the int32 range', () => {
  expect([-2147483648, 0, 2147483647].every(isInt32)).toBe(true);
  expect([-2147483649, 2147483648, 0.5, NaN, Infinity].some(isInt32)).toBe(false);
});

test('checkElements throws an OpLimitError, an OpError the interpreter can tell apart', () => {
  const e = thrown(() => checkElements([3, 4], { ...TEST_CTX, maxTensorElements: 11 }));
  expect(e).toBeInstanceOf(OpLimitError);
  expect(e).toBeInstanceOf(OpError);
  expect((e as Error).message).toBe('result has 12 elements, more than the limit of 11 (shape [3,4])');
  expect(() => checkElements([3, 4], { ...TEST_CTX, maxTensorElements: 12 })).not.toThrow();
});
