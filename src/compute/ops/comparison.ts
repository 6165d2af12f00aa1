import * as tf from '@tensorflow/tfjs';
import { binaryOp, unaryOp } from './elementwise';
import { withZeroGradient } from './gradient';
import { defineOp, OpError, type OpDef } from './op';
import {
  ANY_DTYPE,
  argAt,
  broadcastShapes,
  checkDtype,
  checkSameDtype,
  NO_ATTRS,
  NUMERIC,
  result,
  runtimeBroadcast,
} from './shape-infer';
import { isInt32 } from '../types';

const BOOL = ['bool'] as const;

/** A bool-valued op with a zero gradient, so `where(greater(x, 0), x, 0)` can be differentiated. */
function predicate(kernel: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor) {
  return (a: tf.Tensor, b: tf.Tensor) => withZeroGradient([a, b], ([x, y]) => kernel(x!, y!));
}

/** Comparisons (any dtype, result bool); `false < true` for bool args, as in TensorFlow. */
export const COMPARISON_OPS: readonly OpDef[] = [
  binaryOp('equal', ANY_DTYPE, predicate(tf.equal), { result: 'bool' }),
  binaryOp('not_equal', ANY_DTYPE, predicate(tf.notEqual), { result: 'bool' }),
  binaryOp('less', ANY_DTYPE, predicate(tf.less), { result: 'bool' }),
  binaryOp('less_equal', ANY_DTYPE, predicate(tf.lessEqual), { result: 'bool' }),
  binaryOp('greater', ANY_DTYPE, predicate(tf.greater), { result: 'bool' }),
  binaryOp('greater_equal', ANY_DTYPE, predicate(tf.greaterEqual), { result: 'bool' }),
];

/** Logical ops on bool tensors. */
export const LOGICAL_OPS: readonly OpDef[] = [
  binaryOp('logical_and', BOOL, predicate(tf.logicalAnd)),
  binaryOp('logical_or', BOOL, predicate(tf.logicalOr)),
  unaryOp('logical_not', BOOL, (x) => withZeroGradient([x], ([y]) => tf.logicalNot(y!))),
];

/** `where(cond, a, b)`: a where cond holds, else b; the three broadcast together. */
export const whereOp: OpDef = defineOp<Record<string, never>>({
  name: 'where',
  arity: 3,
  attrs: NO_ATTRS,
  infer(args) {
    const cond = checkDtype(args, 0, BOOL);
    const a = argAt(args, 1);
    checkSameDtype(args, 1, 3);
    return result(a.dtype, broadcastShapes([cond.shape, a.shape, argAt(args, 2).shape]));
  },
  run(args, _attrs, ctx) {
    const [cond, a, b] = [argAt(args, 0), argAt(args, 1), argAt(args, 2)];
    runtimeBroadcast([cond.shape, a.shape, b.shape], ctx);
    if (a.dtype !== 'bool') return tf.where(cond, a, b);
    // WASM's Select writes 4-byte elements into a bool result, corrupting the heap, so use logic instead.
    return tf.logicalOr(tf.logicalAnd(cond, a), tf.logicalAnd(tf.logicalNot(cond), b));
  },
});

interface ClipAttrs {
  min: number;
  max: number;
}

/** Clamps every element to `[min, max]`. */
export const clipByValueOp: OpDef = defineOp<ClipAttrs>({
  name: 'clip_by_value',
  arity: 1,
  attrs: {
    type: 'object',
    additionalProperties: false,
    required: ['min', 'max'],
    properties: { min: { type: 'number' }, max: { type: 'number' } },
  },
  infer(args, { min, max }) {
    const x = checkDtype(args, 0, NUMERIC);
    if (x.dtype === 'int32') {
      if (!isInt32(min)) throw new OpError(`attr min: ${min} is not an int32 (arg 0 is int32)`);
      if (!isInt32(max)) throw new OpError(`attr max: ${max} is not an int32 (arg 0 is int32)`);
    }
    if (min > max) throw new OpError(`attr max: ${max} is less than attr min ${min}`);
    return result(x.dtype, x.shape);
  },
  run(args, { min, max }) {
    const x = argAt(args, 0);
    if (x.dtype === 'float32') return tf.clipByValue(x, min, max);
    // The WASM ClipByValue kernel writes float bits into int32 outputs, so int32 clamps with max/min.
    return tf.minimum(tf.maximum(x, tf.scalar(min, 'int32')), tf.scalar(max, 'int32'));
  },
});

/** The comparison, logical and selection ops. */
export const SELECTION_OPS: readonly OpDef[] = [...COMPARISON_OPS, ...LOGICAL_OPS, whereOp, clipByValueOp];
