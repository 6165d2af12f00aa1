import type * as tf from '@tensorflow/tfjs';
import type { Dtype } from '../types';
import { defineOp, type OpDef } from './op';
import {
  argAt,
  broadcastShapes,
  checkDtype,
  checkSameDtype,
  NO_ATTRS,
  result,
  runtimeBroadcast,
} from './shape-infer';

/** How a binary op's result dtype relates to its args' (comparisons return bool). */
export interface BinaryOptions {
  /** The result dtype; default the args' dtype. */
  readonly result?: Dtype;
}

/**
 * A NumPy-broadcasting binary op over args of one dtype from `dtypes`. The kernel sees the args after the
 * result size has been checked against the limit, since broadcasting `[n,1]` with `[1,n]` squares n.
 */
export function binaryOp(
  name: string,
  dtypes: readonly Dtype[],
  kernel: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  options: BinaryOptions = {},
): OpDef {
  return defineOp<Record<string, never>>({
    name,
    arity: 2,
    attrs: NO_ATTRS,
    infer(args) {
      const a = checkDtype(args, 0, dtypes);
      checkSameDtype(args, 0, 2);
      return result(options.result ?? a.dtype, broadcastShapes([a.shape, argAt(args, 1).shape]));
    },
    run(args, _attrs, ctx) {
      const a = argAt(args, 0);
      const b = argAt(args, 1);
      runtimeBroadcast([a.shape, b.shape], ctx);
      return kernel(a, b);
    },
  });
}

/** An elementwise op of one arg with a dtype from `dtypes`; the result has the arg's type. */
export function unaryOp(name: string, dtypes: readonly Dtype[], kernel: (x: tf.Tensor) => tf.Tensor): OpDef {
  return defineOp<Record<string, never>>({
    name,
    arity: 1,
    attrs: NO_ATTRS,
    infer(args) {
      const x = checkDtype(args, 0, dtypes);
      return result(x.dtype, x.shape);
    },
    run: (args) => kernel(argAt(args, 0)),
  });
}
