import * as tf from '@tensorflow/tfjs';
import type { Dtype } from '../types';
import { withZeroGradient } from './gradient';
import { checkedToInt32 } from './int-overflow';
import { defineOp, type OpDef } from './op';
import { ANY_DTYPE, argAt, checkDtype, DTYPE_SCHEMA, result } from './shape-infer';

interface CastAttrs {
  dtype: Dtype;
}

/**
 * int32 or bool to float32, rounded to float32 on every backend: the CPU backend's Cast keeps the input's
 * array under the float32 dtype (16777217 stays 16777217, and the bundle layer refuses the array), so there
 * the values are copied into a Float32Array. Neither input dtype carries a gradient.
 */
function toFloat32(x: tf.Tensor): tf.Tensor {
  if (tf.getBackend() !== 'cpu') return tf.cast(x, 'float32');
  return tf.tensor(Float32Array.from(x.dataSync()), x.shape, 'float32');
}

/**
 * Converts to `dtype`: float to int32 truncates toward zero, anything to bool is `x != 0` (NaN is true), bool
 * to a number is 0 or 1. Casts to int32 or bool have a zero gradient, as in TensorFlow.
 */
export const castOp: OpDef = defineOp<CastAttrs>({
  name: 'cast',
  arity: 1,
  attrs: {
    type: 'object',
    additionalProperties: false,
    required: ['dtype'],
    properties: { dtype: DTYPE_SCHEMA },
  },
  infer(args, { dtype }) {
    const x = checkDtype(args, 0, ANY_DTYPE);
    return result(dtype, x.shape);
  },
  run(args, { dtype }) {
    const x = argAt(args, 0);
    if (dtype === 'float32') return x.dtype === 'float32' ? tf.cast(x, dtype) : toFloat32(x);
    return withZeroGradient([x], ([y]) => {
      // The WASM Cast kernel copies the low byte into bool outputs (-7 becomes 249), so compare instead.
      if (dtype === 'bool' && y!.dtype !== 'bool') return tf.notEqual(y!, tf.scalar(0, y!.dtype));
      // float32 outside int32 would wrap (3e9 becomes -1294967296): an overflow, as in int-overflow.ts.
      if (y!.dtype === 'float32') return checkedToInt32(y!);
      return tf.cast(y!, dtype);
    });
  },
});

/** The cast ops. */
export const CAST_OPS: readonly OpDef[] = [castOp];
