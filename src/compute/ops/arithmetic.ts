import * as tf from '@tensorflow/tfjs';
import { binaryOp } from './elementwise';
import { OpError, type OpDef } from './op';
import { broadcastShapes, FLOAT, NUMERIC } from './shape-infer';

/**
 * Integer division by zero: TensorFlow raises, WASM returns INT_MIN for floor_div and traps for mod
 * (leaking the output buffer), so int32 divisors are checked first. Float division by zero gives inf or
 * NaN as in IEEE 754.
 */
function integerDivisor(b: tf.Tensor): tf.Tensor {
  if (b.dtype === 'int32' && tf.tidy(() => tf.any(tf.equal(b, 0)).dataSync()[0] === 1)) {
    throw new OpError('arg 1: integer division by zero');
  }
  return b;
}

/**
 * Broadcasts both args to the result shape first: tfjs's gradients of Maximum, Minimum and
 * SquaredDifference assume equal shapes and return one of the wrong shape, while BroadcastTo's sums back.
 */
function broadcastBoth(a: tf.Tensor, b: tf.Tensor): [tf.Tensor, tf.Tensor] {
  const shape = broadcastShapes([a.shape, b.shape]) as number[];
  const to = (t: tf.Tensor) =>
    t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]) ? t : tf.broadcastTo(t, shape);
  return [to(a), to(b)];
}

/** The binary arithmetic ops; all broadcast and require args of one dtype. */
export const ARITHMETIC_OPS: readonly OpDef[] = [
  binaryOp('add', NUMERIC, (a, b) => tf.add(a, b)),
  binaryOp('sub', NUMERIC, (a, b) => tf.sub(a, b)),
  binaryOp('mul', NUMERIC, (a, b) => tf.mul(a, b)),
  binaryOp('maximum', NUMERIC, (a, b) => tf.maximum(...broadcastBoth(a, b))),
  binaryOp('minimum', NUMERIC, (a, b) => tf.minimum(...broadcastBoth(a, b))),
  binaryOp('squared_difference', NUMERIC, (a, b) => tf.squaredDifference(...broadcastBoth(a, b))),
  // Rounds toward -inf and takes the divisor's sign, like Python's // and %.
  binaryOp('floor_div', NUMERIC, (a, b) => tf.floorDiv(a, integerDivisor(b))),
  binaryOp('mod', NUMERIC, (a, b) => tf.mod(a, integerDivisor(b))),
  // Float only: tf.div floors int32 operands, which would make `div` mean two things.
  binaryOp('div', FLOAT, (a, b) => tf.div(a, b)),
  binaryOp('pow', FLOAT, (a, b) => tf.pow(a, b)),
];
