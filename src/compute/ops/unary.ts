import * as tf from '@tensorflow/tfjs';
import { unaryOp } from './elementwise';
import type { OpDef } from './op';
import { FLOAT, NUMERIC } from './shape-infer';

/** The elementwise ops of one arg; the result has the arg's type. */
export const UNARY_OPS: readonly OpDef[] = [
  unaryOp('neg', NUMERIC, (x) => tf.neg(x)),
  unaryOp('abs', NUMERIC, (x) => tf.abs(x)),
  unaryOp('square', NUMERIC, (x) => tf.square(x)),
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
