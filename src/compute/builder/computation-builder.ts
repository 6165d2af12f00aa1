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
  /** Rounds half to even (float32), as `tf.round`. */
  round(x: Handle, hint?: string): Handle {
    return this.op('round', [x], {}, hint);
  }
  /** Largest integer not above x (float32). */
  floor(x: Handle, hint?: string): Handle {
    return this.op('floor', [x], {}, hint);
  }
  /** Smallest integer not below x (float32). */
  ceil(x: Handle, hint?: string): Handle {
    return this.op('ceil', [x], {}, hint);
  }
  /** -1, 0 or 1. */
  sign(x: Handle, hint?: string): Handle {
    return this.op('sign', [x], {}, hint);
  }
  /** `1 / sqrt(x)`. */
  rsqrt(x: Handle, hint?: string): Handle {
    return this.op('rsqrt', [x], {}, hint);
  }
  /** `log(1 + x)`, accurate near 0. */
  log1p(x: Handle, hint?: string): Handle {
    return this.op('log1p', [x], {}, hint);
  }
  /** `log(1 + e ** x)`. */
  softplus(x: Handle, hint?: string): Handle {
    return this.op('softplus', [x], {}, hint);
  }
  /** `(a - b) ** 2`. */
  squaredDifference(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('squared_difference', [a, b], {}, hint);
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
  /** `a >= b` (bool). */
  greaterEqual(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('greater_equal', [a, b], {}, hint);
  }
  /** `a <= b` (bool). */
  lessEqual(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('less_equal', [a, b], {}, hint);
  }
  /** `a != b` (bool). */
  notEqual(a: Operand, b: Operand, hint?: string): Handle {
    return this.op('not_equal', [a, b], {}, hint);
  }
  /** `a && b` (bool). */
  logicalAnd(a: Handle, b: Handle, hint?: string): Handle {
    return this.op('logical_and', [a, b], {}, hint);
  }
  /** `a || b` (bool). */
  logicalOr(a: Handle, b: Handle, hint?: string): Handle {
    return this.op('logical_or', [a, b], {}, hint);
  }
  /** `!x` (bool). */
  logicalNot(x: Handle, hint?: string): Handle {
    return this.op('logical_not', [x], {}, hint);
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
  /** Minimum over `axes` (default all). */
  reduceMin(x: Handle, options: ReduceOptions = {}, hint?: string): Handle {
    return this.op('reduce_min', [x], reduceAttrs(options), hint);
  }
  /** Product over `axes` (default all). */
  reduceProd(x: Handle, options: ReduceOptions = {}, hint?: string): Handle {
    return this.op('reduce_prod', [x], reduceAttrs(options), hint);
  }
  /** Whether every element over `axes` is true (bool). */
  reduceAll(x: Handle, options: ReduceOptions = {}, hint?: string): Handle {
    return this.op('reduce_all', [x], reduceAttrs(options), hint);
  }
  /** Whether any element over `axes` is true (bool). */
  reduceAny(x: Handle, options: ReduceOptions = {}, hint?: string): Handle {
    return this.op('reduce_any', [x], reduceAttrs(options), hint);
  }
  /** Index of the maximum along `axis` (int32). */
  argmax(x: Handle, axis: number, hint?: string): Handle {
    return this.op('argmax', [x], { axis }, hint);
  }
  /** Index of the minimum along `axis` (int32). */
  argmin(x: Handle, axis: number, hint?: string): Handle {
    return this.op('argmin', [x], { axis }, hint);
  }
  /**
   * The vector norm of the elements over `axes` (default all) taken as one vector (float32): `ord` 2 (the
   * default, Euclidean), 1, or `'inf'` (the largest absolute value).
   */
  norm(x: Handle, options: ReduceOptions & { ord?: 1 | 2 | 'inf' } = {}, hint?: string): Handle {
    return this.op('norm', [x], { ...reduceAttrs(options), ord: options.ord }, hint);
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
  /** Permutes the dimensions (default: reversed). */
  transpose(x: Handle, perm?: readonly number[], hint?: string): Handle {
    return this.op('transpose', [x], { perm: perm ? [...perm] : undefined }, hint);
  }
  /** The block starting at `begin` of `size` (`-1`: to the end of that dimension). */
  slice(x: Handle, begin: readonly number[], size: readonly number[], hint?: string): Handle {
    return this.op('slice', [x], { begin: [...begin], size: [...size] }, hint);
  }
  /** Removes the size-1 dimensions `axes` (all of them when every dimension is known). */
  squeeze(x: Handle, axes?: readonly number[], hint?: string): Handle {
    return this.op('squeeze', [x], { axes: axes ? [...axes] : undefined }, hint);
  }
  /** Slices of `x` along `axis` (default 0) picked by int32 `indices`; an index out of range fails the run. */
  gather(x: Handle, indices: Handle, axis?: number, hint?: string): Handle {
    return this.op('gather', [x, indices], { axis }, hint);
  }
  /** Joins tensors along an existing `axis`. */
  concat(xs: readonly Handle[], axis: number, hint?: string): Handle {
    return this.op('concat', xs, { axis }, hint);
  }
  /** Stacks tensors of one shape along a new `axis` (default 0). */
  stack(xs: readonly Handle[], axis?: number, hint?: string): Handle {
    return this.op('stack', xs, { axis }, hint);
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
  /** Ones of `x`'s type. */
  onesLike(x: Handle, hint?: string): Handle {
    return this.op('ones_like', [x], {}, hint);
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
