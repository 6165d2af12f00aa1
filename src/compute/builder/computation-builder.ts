import type { Dtype, Shape } from '../types';
import { BaseBuilder, type Operand } from './core';
import type { Handle } from './handle';
import { TreeOps } from './tree';

/** Reduction options shared by reduce_* ops. */
export interface ReduceOptions {
  readonly axes?: readonly number[];
  readonly keepdims?: boolean;
}

/**
 * Builds one computation: the core node methods of BaseBuilder plus a typed helper per common tensor op and
 * `tree`, the helpers that map over structs of tensors. Every helper takes an optional `hint` that names
 * the node (`<hint>_<n>`), which keeps the emitted JSON readable.
 */
export class ComputationBuilder extends BaseBuilder {
  /** Elementwise helpers over structs of tensors (model weights, optimizer slots). */
  readonly tree: TreeOps = new TreeOps(this);

  // Binary arithmetic (NumPy broadcasting, same dtype; numbers become scalars of the other arg's dtype).
  /** `a + b`. */
  add(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('add', [a, b], {}, hint);
  }
  /** `a - b`. */
  sub(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('sub', [a, b], {}, hint);
  }
  /** `a * b`. */
  mul(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('mul', [a, b], {}, hint);
  }
  /** `a / b` (float32). */
  div(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('div', [a, b], {}, hint);
  }
  /** `a ** b` (float32). */
  pow(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('pow', [a, b], {}, hint);
  }
  /** Elementwise maximum. */
  maximum(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('maximum', [a, b], {}, hint);
  }
  /** Elementwise minimum. */
  minimum(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('minimum', [a, b], {}, hint);
  }
  /** Floor division. */
  floorDiv(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('floor_div', [a, b], {}, hint);
  }
  /** Remainder of floor division. */
  mod(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('mod', [a, b], {}, hint);
  }

  // Unary.
  /** `-x`. */
  neg(x: Handle, hint?: string): Handle {
    return this.op('neg', [x], {}, hint);
  }
  /** `|x|`. */
  abs(x: Handle, hint?: string): Handle {
    return this.op('abs', [x], {}, hint);
  }
  /** `x * x`. */
  square(x: Handle, hint?: string): Handle {
    return this.op('square', [x], {}, hint);
  }
  /** `e ** x`. */
  exp(x: Handle, hint?: string): Handle {
    return this.op('exp', [x], {}, hint);
  }
  /** Natural logarithm. */
  log(x: Handle, hint?: string): Handle {
    return this.op('log', [x], {}, hint);
  }
  /** Square root. */
  sqrt(x: Handle, hint?: string): Handle {
    return this.op('sqrt', [x], {}, hint);
  }
  /** `max(x, 0)`. */
  relu(x: Handle, hint?: string): Handle {
    return this.op('relu', [x], {}, hint);
  }
  /** Logistic sigmoid. */
  sigmoid(x: Handle, hint?: string): Handle {
    return this.op('sigmoid', [x], {}, hint);
  }
  /** Hyperbolic tangent. */
  tanh(x: Handle, hint?: string): Handle {
    return this.op('tanh', [x], {}, hint);
  }

  // Comparisons and selection.
  /** `a == b` (bool). */
  equal(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('equal', [a, b], {}, hint);
  }
  /** `a > b` (bool). */
  greater(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('greater', [a, b], {}, hint);
  }
  /** `a < b` (bool). */
  less(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('less', [a, b], {}, hint);
  }
  /** `cond ? a : b`, elementwise. */
  where(cond: Handle, a: Operand, b: Operand, hint?: string): Handle {
    return this.op('where', [cond, a, b], {}, hint);
  }
  /** Clamps to `[min, max]`. */
  clip(x: Handle, min: number, max: number, hint?: string): Handle {
    return this.op('clip_by_value', [x], { min, max }, hint);
  }
  /** Converts to another dtype. */
  cast(x: Handle, dtype: Dtype, hint?: string): Handle {
    return this.op('cast', [x], { dtype }, hint);
  }

  // Reductions.
  /** Sum over `axes` (default all). */
  reduceSum(x: Handle, options: ReduceOptions = {}, hint?: string): Handle {
    return this.op('reduce_sum', [x], reduceAttrs(options), hint);
  }
  /** Mean over `axes` (default all; float32). */
  reduceMean(x: Handle, options: ReduceOptions = {}, hint?: string): Handle {
    return this.op('reduce_mean', [x], reduceAttrs(options), hint);
  }
  /** Maximum over `axes` (default all). */
  reduceMax(x: Handle, options: ReduceOptions = {}, hint?: string): Handle {
    return this.op('reduce_max', [x], reduceAttrs(options), hint);
  }
  /** Index of the maximum along `axis` (int32). */
  argmax(x: Handle, axis: number, hint?: string): Handle {
    return this.op('argmax', [x], { axis }, hint);
  }

  // Linear algebra, shapes and neural-net ops.
  /** Matrix product. */
  matmul(
    a: Handle,
    b: Handle,
    options: { transposeA?: boolean; transposeB?: boolean } = {},
    hint?: string,
  ): Handle {
    return this.op(
      'matmul',
      [a, b],
      { transpose_a: options.transposeA || undefined, transpose_b: options.transposeB || undefined },
      hint,
    );
  }
  /** Reshape; at most one `-1`. */
  reshape(x: Handle, shape: readonly number[], hint?: string): Handle {
    return this.op('reshape', [x], { shape: [...shape] }, hint);
  }
  /** Inserts a dimension of size 1 at `axis`. */
  expandDims(x: Handle, axis: number, hint?: string): Handle {
    return this.op('expand_dims', [x], { axis }, hint);
  }
  /** One-hot encoding of int32 indices (float32 result). */
  oneHot(indices: Handle, depth: number, hint?: string): Handle {
    return this.op('one_hot', [indices], { depth }, hint);
  }
  /** The size of dimension `axis` at run time (int32 scalar), e.g. the batch size. */
  dim(x: Handle, axis: number, hint?: string): Handle {
    return this.op('dim', [x], { axis }, hint);
  }
  /** The number of elements at run time (int32 scalar). */
  size(x: Handle, hint?: string): Handle {
    return this.op('size', [x], {}, hint);
  }
  /** Softmax along `axis` (default last). */
  softmax(x: Handle, axis?: number, hint?: string): Handle {
    return this.op('softmax', [x], { axis }, hint);
  }
  /** Log-softmax along `axis` (default last). */
  logSoftmax(x: Handle, axis?: number, hint?: string): Handle {
    return this.op('log_softmax', [x], { axis }, hint);
  }
  /** Zeros of `x`'s type. */
  zerosLike(x: Handle, hint?: string): Handle {
    return this.op('zeros_like', [x], {}, hint);
  }
  /** Server-only Gaussian noise; with a seed the draw is deterministic for a given round. */
  randomNormal(
    shape: Shape,
    options: { mean?: number; stddev?: number; seed?: number } = {},
    hint?: string,
  ): Handle {
    return this.op(
      'random_normal',
      [],
      { shape: [...shape], mean: options.mean, stddev: options.stddev, seed: options.seed },
      hint,
    );
  }
}

function reduceAttrs(o: ReduceOptions): Record<string, unknown> {
  return { axes: o.axes ? [...o.axes] : undefined, keepdims: o.keepdims || undefined };
}
