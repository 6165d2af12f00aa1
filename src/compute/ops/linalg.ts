import * as tf from '@tensorflow/tfjs';
import { withZeroGradient } from './gradient';
import { defineOp, OpError, type OpDef } from './op';
import { argAt, checkDtype, checkElements, dimAt, FLOAT, result, shapeText, unifyDim } from './shape-infer';

interface MatmulAttrs {
  transpose_a?: boolean;
  transpose_b?: boolean;
}

/**
 * Matrix product of rank-2 args, or of rank-3 args with one batch dimension. Batch dimensions must be equal
 * rather than broadcast: tfjs's gradient of a broadcast batch has the wrong shape. float32 only, since the
 * WASM backend has no integer BatchMatMul.
 */
export const matmulOp: OpDef = defineOp<MatmulAttrs>({
  name: 'matmul',
  arity: 2,
  attrs: {
    type: 'object',
    additionalProperties: false,
    properties: { transpose_a: { type: 'boolean' }, transpose_b: { type: 'boolean' } },
  },
  infer(args, { transpose_a = false, transpose_b = false }) {
    const a = checkDtype(args, 0, FLOAT);
    const b = checkDtype(args, 1, FLOAT);
    if (a.shape.length !== 2 && a.shape.length !== 3) {
      throw new OpError(`arg 0: rank ${a.shape.length} is not 2 or 3 (shape ${shapeText(a.shape)})`);
    }
    if (b.shape.length !== a.shape.length) {
      throw new OpError(`arg 1: rank ${b.shape.length} is not ${a.shape.length}, the rank of arg 0`);
    }
    const r = a.shape.length;
    const [am, ak] = transpose_a
      ? [dimAt(a.shape, r - 1), dimAt(a.shape, r - 2)]
      : [dimAt(a.shape, r - 2), dimAt(a.shape, r - 1)];
    const [bk, bn] = transpose_b
      ? [dimAt(b.shape, r - 1), dimAt(b.shape, r - 2)]
      : [dimAt(b.shape, r - 2), dimAt(b.shape, r - 1)];
    if (unifyDim(ak, bk) === undefined) {
      throw new OpError(
        `arg 1: inner dimensions do not agree: ${shapeText(a.shape)}${transpose_a ? 'ᵀ' : ''} x ` +
          `${shapeText(b.shape)}${transpose_b ? 'ᵀ' : ''} (${ak} vs ${bk})`,
      );
    }
    if (r === 2) return result('float32', [am, bn]);
    const batch = unifyDim(dimAt(a.shape, 0), dimAt(b.shape, 0));
    if (batch === undefined) {
      throw new OpError(`arg 1: batch dimension ${String(b.shape[0])} is not arg 0's ${String(a.shape[0])}`);
    }
    return result('float32', [batch, am, bn]);
  },
  run(args, { transpose_a = false, transpose_b = false }, ctx) {
    const a = argAt(args, 0);
    const b = argAt(args, 1);
    const r = a.rank;
    if (r === 3 && a.shape[0] !== b.shape[0]) {
      throw new OpError(`arg 1: batch dimension ${b.shape[0]} is not arg 0's ${a.shape[0]}`);
    }
    const m = transpose_a ? a.shape[r - 1]! : a.shape[r - 2]!;
    const k = transpose_a ? a.shape[r - 2]! : a.shape[r - 1]!;
    const kb = transpose_b ? b.shape[r - 1]! : b.shape[r - 2]!;
    const n = transpose_b ? b.shape[r - 2]! : b.shape[r - 1]!;
    if (k !== kb) throw new OpError(`arg 1: inner dimensions do not agree (${k} vs ${kb})`);
    const shape = r === 3 ? [a.shape[0]!, m, n] : [m, n];
    checkElements(shape, ctx);
    // XNNPACK rejects an empty inner dimension and returns garbage; the product over nothing is zero.
    if (k === 0) return withZeroGradient([a, b], () => tf.zeros(shape));
    return tf.matMul(a, b, transpose_a, transpose_b);
  },
});

/** The linear algebra ops. */
export const LINALG_OPS: readonly OpDef[] = [matmulOp];
