import * as tf from '@tensorflow/tfjs';
import { binaryOp } from './elementwise';
import { asFloat, checkedElementwise } from './int-overflow';
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
  // int32 results that would wrap throw IntOverflowError instead (int-overflow.ts); float32 runs as before.
  binaryOp('add', NUMERIC, (a, b) => checkedElementwise(tf.add(a, b), () => tf.add(asFloat(a), asFloat(b)))),
  binaryOp('sub', NUMERIC, (a, b) => checkedElementwise(tf.sub(a, b), () => tf.sub(asFloat(a), asFloat(b)))),
  binaryOp('mul', NUMERIC, (a, b) => checkedElementwise(tf.mul(a, b), () => tf.mul(asFloat(a), asFloat(b)))),
  binaryOp('maximum', NUMERIC, (a, b) => tf.maximum(...broadcastBoth(a, b))),
  binaryOp('minimum', NUMERIC, (a, b) => tf.minimum(...broadcastBoth(a, b))),
  binaryOp('squared_difference', NUMERIC, (a, b) =>
    checkedElementwise(tf.squaredDifference(...broadcastBoth(a, b)), () =>
      tf.square(tf.sub(asFloat(a), asFloat(b))),
    ),
  ),
  // Rounds toward -inf and takes the divisor's sign, like Python's // and %. int32: -2^31 // -1 overflows.
  // float32 is floor(a / b) by hand: the CPU backend's FloorDiv answers int32 for float32 operands.
  binaryOp('floor_div', NUMERIC, (a, b) =>
    a.dtype === 'float32'
      ? tf.floor(tf.div(a, b))
      : checkedElementwise(tf.floorDiv(a, integerDivisor(b)), () => tf.floor(tf.div(asFloat(a), asFloat(b)))),
  ),
  binaryOp('mod', NUMERIC, (a, b) => tf.mod(a, integerDivisor(b))),
  // Float only: tf.div floors int32 operands, which would make `div` mean two things.
  binaryOp('div', FLOAT, (a, b) => tf.div(a, b)),
  binaryOp('pow', FLOAT, (a, b) => tf.pow(a, b)),
];
