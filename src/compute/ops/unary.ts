import * as tf from '@tensorflow/tfjs';
import { unaryOp } from './elementwise';
import { asFloat, checkedElementwise } from './int-overflow';
import type { OpDef } from './op';
import { FLOAT, NUMERIC } from './shape-infer';

function intNeg(x: tf.Tensor): tf.Tensor {
  return tf.sub(tf.zerosLike(x), x);
}

/** The elementwise ops of one arg; the result has the arg's type. */
export const UNARY_OPS: readonly OpDef[] = [
  // int32: -(-2^31), |-2^31| and squares past 2^31 throw IntOverflowError instead of wrapping. The WASM
  // int32 Neg, Abs and Square kernels go through float32 (neg(2^31-1) is -2^31 there), so int32 uses the
  // exact integer sub and mul.
  unaryOp('neg', NUMERIC, (x) =>
    x.dtype === 'int32' ? checkedElementwise(intNeg(x), () => tf.neg(asFloat(x))) : tf.neg(x),
  ),
  unaryOp('abs', NUMERIC, (x) =>
    x.dtype === 'int32'
      ? checkedElementwise(tf.where(tf.less(x, 0), intNeg(x), x), () => tf.abs(asFloat(x)))
      : tf.abs(x),
  ),
  unaryOp('square', NUMERIC, (x) =>
    x.dtype === 'int32' ? checkedElementwise(tf.mul(x, x), () => tf.square(asFloat(x))) : tf.square(x),
  ),
  unaryOp('sign', NUMERIC, (x) => tf.sign(x)),
  unaryOp('exp', FLOAT, (x) => tf.exp(x)),
  unaryOp('log', FLOAT, (x) => tf.log(x)),
  unaryOp('log1p', FLOAT, (x) => tf.log1p(x)),
  unaryOp('sqrt', FLOAT, (x) => tf.sqrt(x)),
  unaryOp('rsqrt', FLOAT, (x) => tf.rsqrt(x)),
  unaryOp('relu', FLOAT, (x) => tf.relu(x)),
  unaryOp('sigmoid', FLOAT, (x) => tf.sigmoid(x)),
  unaryOp('tanh', FLOAT, (x) => tf.tanh(x)),
  unaryOp('softplus', FLOAT, (x) => tf.softplus(x)),
  unaryOp('floor', FLOAT, (x) => tf.floor(x)),
  unaryOp('ceil', FLOAT, (x) => tf.ceil(x)),
  // Half to even, like TensorFlow's round (and unlike Math.round).
  unaryOp('round', FLOAT, (x) => tf.round(x)),
];
