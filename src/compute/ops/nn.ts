import * as tf from '@tensorflow/tfjs';
import { defineOp, type OpDef } from './op';
import { argAt, AXIS_SCHEMA, checkDtype, FLOAT, normalizeAxis, result } from './shape-infer';

interface SoftmaxAttrs {
  axis?: number;
}

/**
 * Applies `kernel` along `axis`. The WASM softmax kernels only reduce the last axis, so another axis is
 * swapped to the end and back (a swap is its own inverse), which keeps the op differentiable.
 */
function alongAxis(x: tf.Tensor, axis: number, kernel: (t: tf.Tensor) => tf.Tensor): tf.Tensor {
  const last = x.rank - 1;
  if (axis === last) return kernel(x);
  const perm = Array.from({ length: x.rank }, (_, i) => (i === axis ? last : i === last ? axis : i));
  return tf.transpose(kernel(tf.transpose(x, perm)), perm);
}

function softmaxOp(name: string, kernel: (t: tf.Tensor) => tf.Tensor): OpDef {
  return defineOp<SoftmaxAttrs>({
    name,
    arity: 1,
    attrs: { type: 'object', additionalProperties: false, properties: { axis: AXIS_SCHEMA } },
    infer(args, { axis = -1 }) {
      const x = checkDtype(args, 0, FLOAT);
      // A scalar has no axis (and WASM's softmax of one returns garbage).
      normalizeAxis(axis, x.shape.length);
      return result('float32', x.shape);
    },
    run(args, { axis = -1 }) {
      const x = argAt(args, 0);
      return alongAxis(x, normalizeAxis(axis, x.rank), kernel);
    },
  });
}

/** softmax and log_softmax along `axis` (default the last). */
export const NN_OPS: readonly OpDef[] = [
  softmaxOp('softmax', (t) => tf.softmax(t)),
  softmaxOp('log_softmax', (t) => tf.logSoftmax(t)),
];
