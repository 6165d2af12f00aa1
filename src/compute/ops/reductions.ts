import * as tf from '@tensorflow/tfjs';
import { INT32_MAX, INT32_MIN, type Dtype, type Shape } from '../types';
import { withZeroGradient } from './gradient';
import { checkIntReduction } from './int-overflow';
import { defineOp, OpError, type OpDef } from './op';
import {
  argAt,
  AXES_SCHEMA,
  AXIS_SCHEMA,
  checkDtype,
  FLOAT,
  normalizeAxes,
  normalizeAxis,
  NUMERIC,
  result,
} from './shape-infer';

interface ReduceAttrs {
  axes?: number[];
  keepdims?: boolean;
}

type Reducer = (x: tf.Tensor, axes: number[], keepdims: boolean) => tf.Tensor;

const REDUCE_PROPERTIES = { axes: AXES_SCHEMA, keepdims: { type: 'boolean' } } as const;

/** The shape after reducing `axes` (normalised): each is dropped, or kept as 1 with `keepdims`. */
function reducedShape(shape: Shape, axes: readonly number[], keepdims: boolean): (number | null)[] {
  const out: (number | null)[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

/**
 * Reduces with `kernel`, except that an empty input gives `identity` (0 for a sum, -inf for a max, NaN for a
 * mean, as in TensorFlow): the WASM reduction kernels return uninitialised memory for empty inputs, which an
 * empty batch would otherwise feed into a model.
 */
function reduceOrIdentity(
  x: tf.Tensor,
  axes: number[],
  keepdims: boolean,
  kernel: Reducer,
  identity: number,
  dtype: Dtype,
): tf.Tensor {
  if (x.size > 0) return kernel(x, axes, keepdims);
  const shape = reducedShape(x.shape, axes, keepdims) as number[];
  return withZeroGradient([x], () => tf.fill(shape, identity, dtype));
}

function reduceOp(
  name: string,
  dtypes: readonly Dtype[],
  kernel: Reducer,
  identity: (dtype: Dtype) => number,
  options: { resultDtype?: Dtype; noGradient?: boolean } = {},
): OpDef {
  return defineOp<ReduceAttrs>({
    name,
    arity: 1,
    attrs: { type: 'object', additionalProperties: false, properties: REDUCE_PROPERTIES },
    infer(args, { axes, keepdims = false }) {
      const x = checkDtype(args, 0, dtypes);
      const ax = normalizeAxes(axes, x.shape.length);
      return result(options.resultDtype ?? x.dtype, reducedShape(x.shape, ax, keepdims));
    },
    run(args, { axes, keepdims = false }) {
      const x = argAt(args, 0);
      const ax = normalizeAxes(axes, x.rank);
      // The checker only lets float32, int32 and bool tensors reach a kernel.
      const dtype = x.dtype as Dtype;
      const reduce = () =>
        reduceOrIdentity(x, ax, keepdims, kernel, identity(dtype), options.resultDtype ?? dtype);
      return options.noGradient ? withZeroGradient([x], reduce) : reduce();
    },
  });
}

/** The reductions over `axes` (default all). */
export const REDUCE_OPS: readonly OpDef[] = [
  // int32 sums and products that leave int32 throw IntOverflowError rather than wrap (int-overflow.ts).
  reduceOp(
    'reduce_sum',
    NUMERIC,
    (x, a, k) => {
      checkIntReduction('sum', x, a);
      return tf.sum(x, a, k);
    },
    () => 0,
  ),
  reduceOp(
    'reduce_max',
    NUMERIC,
    (x, a, k) => tf.max(x, a, k),
    (d) => (d === 'int32' ? INT32_MIN : -Infinity),
  ),
  reduceOp(
    'reduce_min',
    NUMERIC,
    (x, a, k) => tf.min(x, a, k),
    (d) => (d === 'int32' ? INT32_MAX : Infinity),
  ),
  reduceOp(
    'reduce_prod',
    NUMERIC,
    (x, a, k) => {
      checkIntReduction('prod', x, a);
      return tf.prod(x, a, k);
    },
    () => 1,
  ),
  reduceOp(
    'reduce_mean',
    FLOAT,
    (x, a, k) => tf.mean(x, a, k),
    () => NaN,
  ),
  reduceOp(
    'reduce_any',
    ['bool'],
    (x, a, k) => tf.any(x, a, k),
    () => 0,
    { noGradient: true },
  ),
  reduceOp(
    'reduce_all',
    ['bool'],
    (x, a, k) => tf.all(x, a, k),
    () => 1,
    { noGradient: true },
  ),
];

interface ArgAttrs {
  axis: number;
}

function argOp(name: string, kernel: (x: tf.Tensor, axis: number) => tf.Tensor): OpDef {
  return defineOp<ArgAttrs>({
    name,
    arity: 1,
    attrs: {
      type: 'object',
      additionalProperties: false,
      required: ['axis'],
      properties: { axis: AXIS_SCHEMA },
    },
    infer(args, { axis }) {
      const x = checkDtype(args, 0, NUMERIC);
      const a = normalizeAxis(axis, x.shape.length);
      return result('int32', reducedShape(x.shape, [a], false));
    },
    run(args, { axis }) {
      const x = argAt(args, 0);
      const a = normalizeAxis(axis, x.rank);
      if (x.shape[a] === 0) {
        const shape = reducedShape(x.shape, [a], false) as number[];
        if (shape.includes(0)) return tf.zeros(shape, 'int32');
        throw new OpError(`attr axis: dimension ${a} of arg 0 ${JSON.stringify(x.shape)} is empty`);
      }
      return kernel(x, a);
    },
  });
}

/** The index of the largest (smallest) element along `axis`; the first one on ties. */
export const ARG_OPS: readonly OpDef[] = [
  argOp('argmax', (x, a) => tf.argMax(x, a)),
  argOp('argmin', (x, a) => tf.argMin(x, a)),
];

interface NormAttrs extends ReduceAttrs {
  ord?: 1 | 2 | 'inf';
}

/** The L2 norm from a sum of squares, with gradient 0 rather than NaN at 0 (sqrt'(0) is infinite). */
function safeSqrt(s: tf.Tensor): tf.Tensor {
  const positive = withZeroGradient([s], ([v]) => tf.greater(v!, 0));
  return tf.where(positive, tf.sqrt(tf.where(positive, s, tf.onesLike(s))), tf.zerosLike(s));
}

/**
 * The vector norm of the elements over `axes` (default all), taken together as one vector: for the whole
 * tensor or per row, as clipping model updates needs. (Unlike tf.norm, two axes do not mean a matrix norm.)
 */
export const normOp: OpDef = defineOp<NormAttrs>({
  name: 'norm',
  arity: 1,
  attrs: {
    type: 'object',
    additionalProperties: false,
    properties: { ...REDUCE_PROPERTIES, ord: { enum: [1, 2, 'inf'] } },
  },
  infer(args, { axes, keepdims = false }) {
    const x = checkDtype(args, 0, FLOAT);
    return result('float32', reducedShape(x.shape, normalizeAxes(axes, x.shape.length), keepdims));
  },
  run(args, { ord = 2, axes, keepdims = false }) {
    const x = argAt(args, 0);
    const ax = normalizeAxes(axes, x.rank);
    const sum: Reducer = (v, a, k) => tf.sum(v, a, k);
    if (ord === 1) return reduceOrIdentity(tf.abs(x), ax, keepdims, sum, 0, 'float32');
    if (ord === 'inf')
      return reduceOrIdentity(tf.abs(x), ax, keepdims, (v, a, k) => tf.max(v, a, k), 0, 'float32');
    return safeSqrt(reduceOrIdentity(tf.square(x), ax, keepdims, sum, 0, 'float32'));
  },
});

/** The reductions, arg-reductions and norm. */
export const REDUCTION_OPS: readonly OpDef[] = [...REDUCE_OPS, ...ARG_OPS, normOp];
