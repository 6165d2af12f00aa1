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
    if (dtype === 'float32') return tf.cast(x, dtype);
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
