import * as tf from '@tensorflow/tfjs';
import Ajv from 'ajv';
import { DEFAULT_LIMITS } from '../limits';
import type { Dtype, Shape, TensorType } from '../types';
import { tensorType } from '../types';
import { getOp } from './index';
import { OpError, type KernelContext, type OpDef } from './op';

// Helpers for the ops' table-driven tests (and the interpreter's): plain functions, no jest, so they
// type-check with the sources.

/** A nested array of elements, as `arraySync` returns. */
export type Nested = number | boolean | readonly Nested[];

/** One arg of a test case: its data and the static type the checker would see (unknown dims allowed). */
export interface ArgSpec {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly values: readonly (number | boolean)[];
  readonly type: TensorType;
}

/** The kernel context of tests. */
export const TEST_CTX: KernelContext = {
  round: 3,
  node: 'test/node',
  maxTensorElements: DEFAULT_LIMITS.maxTensorElements,
};

function shapeOf(v: Nested): number[] {
  return Array.isArray(v) ? [v.length, ...(v.length > 0 ? shapeOf(v[0] as Nested) : [])] : [];
}

function flat(v: Nested): (number | boolean)[] {
  return Array.isArray(v) ? v.flatMap((e: Nested) => flat(e)) : [v as number | boolean];
}

/** An arg from nested data; `staticShape` overrides the type's shape, e.g. `[null, 2]`. */
export function argOf(dtype: Dtype, data: Nested, staticShape?: Shape, shape = shapeOf(data)): ArgSpec {
  return { dtype, shape, values: flat(data), type: tensorType(dtype, staticShape ?? shape) };
}

/** A float32 arg. */
export const f32 = (data: Nested, staticShape?: Shape): ArgSpec => argOf('float32', data, staticShape);
/** An int32 arg. */
export const i32 = (data: Nested, staticShape?: Shape): ArgSpec => argOf('int32', data, staticShape);
/** A bool arg. */
export const bool = (data: Nested, staticShape?: Shape): ArgSpec => argOf('bool', data, staticShape);
/** An empty arg of `shape` (nested arrays cannot say `[0, 3]`). */
export const empty = (dtype: Dtype, shape: readonly number[], staticShape?: Shape): ArgSpec =>
  argOf(dtype, [], staticShape, [...shape]);

/** The type of an actual tensor. */
export function typeOf(t: tf.Tensor): TensorType {
  return tensorType(t.dtype as Dtype, t.shape);
}

/** The registered op, or an Error naming it. */
export function opNamed(name: string): OpDef {
  const op = getOp(name);
  if (!op) throw new Error(`no op ${name}`);
  return op;
}

/** What one op did on one case. */
export interface OpOutcome {
  /** The type `infer` promised. */
  readonly inferred: TensorType;
  /** The type of the tensor the kernel returned. */
  readonly actual: TensorType;
  /** The kernel's result (`arraySync`). */
  readonly value: Nested;
  /** Tensors alive after the tidy that were not before: must be 0. */
  readonly leaked: number;
}

/** Infers and runs an op on `args` inside `tf.tidy`, as the interpreter does. */
export function runOp(
  name: string,
  args: readonly ArgSpec[],
  attrs: object = {},
  ctx: KernelContext = TEST_CTX,
): OpOutcome {
  const op = opNamed(name);
  const a = attrs as Record<string, unknown>;
  const inferred = op.infer(
    args.map((x) => x.type),
    a,
  );
  return { inferred, ...runKernel(op, args, a, ctx) };
}

/** Runs only the kernel inside `tf.tidy`: the type and value of its result and how many tensors leaked. */
export function runKernel(
  op: OpDef,
  args: readonly ArgSpec[],
  attrs: object,
  ctx: KernelContext = TEST_CTX,
): Omit<OpOutcome, 'inferred'> {
  const before = tf.memory().numTensors;
  let actual = tensorType('float32', []);
  let value: Nested = 0;
  tf.tidy(() => {
    const inputs = args.map((x) => tf.tensor([...x.values].map(Number), [...x.shape], x.dtype));
    const out = op.run(inputs, attrs as Record<string, unknown>, ctx);
    actual = typeOf(out);
    value = out.arraySync() as Nested;
  });
  return { actual, value, leaked: tf.memory().numTensors - before };
}

/** The error a function throws, or undefined. */
export function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** The message of an OpError thrown by `infer`, or a description of what happened instead. */
export function inferError(name: string, types: readonly TensorType[], attrs: object = {}): string {
  const e = thrown(() => opNamed(name).infer(types, attrs as Record<string, unknown>));
  if (e instanceof OpError) return e.message;
  return e === undefined ? '(no error)' : `(not an OpError: ${String(e)})`;
}

/** The message of an OpError thrown by the kernel, or a description of what happened instead. */
export function runError(
  name: string,
  args: readonly ArgSpec[],
  attrs: object = {},
  ctx: KernelContext = TEST_CTX,
): string {
  const e = thrown(() => runKernel(opNamed(name), args, attrs, ctx));
  if (e instanceof OpError) return e.message;
  return e === undefined ? '(no error)' : `(not an OpError: ${String(e)})`;
}

const ajv = new Ajv({ allErrors: true, strict: false });

/** ajv's complaints about `attrs` under the op's schema (empty when valid). */
export function schemaErrors(name: string, attrs: object): string[] {
  const validate = ajv.compile(opNamed(name).attrs);
  return validate(attrs) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

/** Where `actual` differs from `expected` beyond `tol` (relative for large values), or null. */
export function mismatch(actual: Nested, expected: Nested, tol = 1e-5, path = ''): string | null {
  if (Array.isArray(expected) || Array.isArray(actual)) {
    if (!Array.isArray(expected) || !Array.isArray(actual) || expected.length !== actual.length) {
      return `${path || 'value'}: ${JSON.stringify(actual)} is not ${JSON.stringify(expected)}`;
    }
    for (let i = 0; i < expected.length; i++) {
      const m = mismatch(actual[i] as Nested, expected[i] as Nested, tol, `${path}[${i}]`);
      if (m) return m;
    }
    return null;
  }
  const a = Number(actual);
  const e = Number(expected);
  const same =
    Object.is(a, e) ||
    (Number.isNaN(a) && Number.isNaN(e)) ||
    Math.abs(a - e) <= tol * Math.max(1, Math.abs(e));
  return same ? null : `${path || 'value'}: ${a} is not ${e}`;
}

/** A case that must type-check and run: the inferred type and the kernel's value. */
export interface OkCase {
  readonly op: string;
  readonly what: string;
  readonly args: readonly ArgSpec[];
  readonly attrs?: object;
  readonly type: TensorType;
  readonly value: Nested;
  /** Tolerance of the value comparison (default 1e-5). */
  readonly tol?: number;
}

/** A case `infer` must reject with an OpError whose message matches `error`. */
export interface BadCase {
  readonly op: string;
  readonly what: string;
  readonly types: readonly TensorType[];
  readonly attrs?: object;
  readonly error: RegExp;
}

/** A case that type-checks but whose kernel must throw an OpError matching `error` (unknown dims). */
export interface RunErrorCase {
  readonly op: string;
  readonly what: string;
  readonly args: readonly ArgSpec[];
  readonly attrs?: object;
  readonly error: RegExp;
}

/** One small valid use of an op, for sweeps over every op (leaks, gradients). */
export interface SmokeCase {
  readonly args: readonly ArgSpec[];
  readonly attrs?: object;
}

const M = f32([
  [0.5, 1.5, 2],
  [3, 0.25, 1],
]);
const V = f32([0.5, 2, 1.25]);
const MI = i32([
  [1, -2, 3],
  [4, 5, -6],
]);
const BV = bool([true, false, true]);

/** A valid case of every op, positive where the op needs it (log, sqrt, pow); float32 where it can. */
export const SMOKE: Readonly<Record<string, SmokeCase>> = {
  const: { args: [], attrs: { dtype: 'float32', shape: [2], value: [1, 2] } },
  zeros_like: { args: [M] },
  ones_like: { args: [M] },
  random_normal: { args: [], attrs: { shape: [2, 2], seed: 1 } },
  add: { args: [M, V] },
  sub: { args: [M, V] },
  mul: { args: [M, V] },
  maximum: { args: [M, V] },
  minimum: { args: [M, V] },
  squared_difference: { args: [M, V] },
  floor_div: { args: [M, V] },
  mod: { args: [M, V] },
  div: { args: [M, V] },
  pow: { args: [M, V] },
  neg: { args: [M] },
  abs: { args: [M] },
  square: { args: [M] },
  sign: { args: [M] },
  exp: { args: [M] },
  log: { args: [M] },
  log1p: { args: [M] },
  sqrt: { args: [M] },
  rsqrt: { args: [M] },
  relu: { args: [M] },
  sigmoid: { args: [M] },
  tanh: { args: [M] },
  softplus: { args: [M] },
  floor: { args: [M] },
  ceil: { args: [M] },
  round: { args: [M] },
  equal: { args: [M, V] },
  not_equal: { args: [M, V] },
  less: { args: [M, V] },
  less_equal: { args: [M, V] },
  greater: { args: [M, V] },
  greater_equal: { args: [M, V] },
  logical_and: { args: [BV, BV] },
  logical_or: { args: [BV, BV] },
  logical_not: { args: [BV] },
  where: { args: [BV, M, V] },
  clip_by_value: { args: [M], attrs: { min: 0.5, max: 1.5 } },
  cast: { args: [M], attrs: { dtype: 'int32' } },
  reduce_sum: { args: [M], attrs: { axes: [1] } },
  reduce_max: { args: [M], attrs: { axes: [0] } },
  reduce_min: { args: [M] },
  reduce_prod: { args: [M], attrs: { axes: [1], keepdims: true } },
  reduce_mean: { args: [M], attrs: { axes: [-1] } },
  reduce_any: { args: [BV] },
  reduce_all: { args: [BV] },
  argmax: { args: [M], attrs: { axis: 1 } },
  argmin: { args: [MI], attrs: { axis: 0 } },
  norm: { args: [M], attrs: { axes: [1] } },
  matmul: { args: [M, M], attrs: { transpose_b: true } },
  reshape: { args: [M], attrs: { shape: [3, -1] } },
  transpose: { args: [M] },
  expand_dims: { args: [M], attrs: { axis: 1 } },
  squeeze: { args: [f32([[1, 2]])] },
  slice: { args: [M], attrs: { begin: [0, 1], size: [-1, 2] } },
  gather: { args: [M, i32([1, 1, 0])] },
  concat: { args: [M, M], attrs: { axis: 1 } },
  stack: { args: [M, M], attrs: { axis: 2 } },
  one_hot: { args: [i32([0, 2])], attrs: { depth: 3 } },
  dim: { args: [M], attrs: { axis: 1 } },
  size: { args: [M] },
  softmax: { args: [M], attrs: { axis: 0 } },
  log_softmax: { args: [M] },
};
