import { product } from './shape-infer';

/**
 * The cost of each tensor op as data, beside the registry: FLOPs of one application and the bytes its
 * kernel leaves behind beside its result, from static shapes. The static cost model (`../cost.ts`) reads
 * it; the ops themselves know nothing of it. Every registry op must have an entry (a test checks), so that
 * a new op cannot be costed as free by accident.
 *
 * Shapes here are fully known: the cost model has already replaced unknown dimensions (docs/ir.md, "Cost
 * model"). A FLOP is one scalar operation: elementwise ops count one per result element, reductions one
 * per input element, matmul 2·m·n·k (a multiply and an add per term), as the usual FLOP tables do.
 */

/** A fully known shape. */
export type Dims = readonly number[];

/** What one application of an op costs. */
export interface OpCost {
  /** FLOPs of one application. */
  flops(args: readonly Dims[], out: Dims, attrs: Record<string, unknown>): number;
  /**
   * Bytes of intermediate tensors the kernel creates beside its result. They live in the evaluation's
   * memory scope, so they count towards peak memory like node results (default none).
   */
  scratchBytes?(args: readonly Dims[], out: Dims, attrs: Record<string, unknown>): number;
  /**
   * True when the result shares its input's buffer (tfjs reshapes are views), so it adds no memory.
   */
  readonly view?: boolean;
}

const F32 = 4;

/** One FLOP per result element: elementwise ops, casts, fills, copies. */
const perOutput: OpCost = { flops: (_a, out) => product(out) };
/** One FLOP per input element: reductions. */
const perInput: OpCost = { flops: (args) => product(args[0] ?? []) };
/** Shape-only ops: tfjs returns a view of the same buffer. */
const view: OpCost = { flops: () => 1, view: true };
/** Ops whose result is a scalar read from the shape. */
const scalar: OpCost = { flops: () => 1 };
/** Binary ops that broadcast both args to the result shape first (arithmetic.ts, broadcastBoth). */
const broadcastBoth: OpCost = {
  flops: (_a, out) => product(out),
  scratchBytes: (args, out) => args.filter((a) => product(a) !== product(out)).length * product(out) * F32,
};

/** matmul of rank-2 args, or rank-3 with a batch dimension: 2·batch·m·n·k. */
const matmul: OpCost = {
  flops(args, out, attrs) {
    const a = args[0] ?? [];
    const k = attrs.transpose_a === true ? a[a.length - 2]! : a[a.length - 1]!;
    return 2 * product(out) * k;
  },
};

/** Softmax: max, subtract, exp, sum, divide; another axis than the last adds two transposes. */
const softmax: OpCost = {
  flops: (args) => 5 * product(args[0] ?? []),
  scratchBytes(args, _out, attrs) {
    const x = args[0] ?? [];
    const axis = typeof attrs.axis === 'number' ? attrs.axis : -1;
    const last = axis === -1 || axis === x.length - 1;
    return (last ? 1 : 3) * product(x) * F32;
  },
};

/** norm: abs or square of the input, a reduction, and (L2) the guarded sqrt's few result-sized tensors. */
const norm: OpCost = {
  flops: (args, out) => 2 * product(args[0] ?? []) + 6 * product(out),
  scratchBytes: (args, out) => product(args[0] ?? []) * F32 + 6 * product(out) * F32,
};

/** one_hot: an int32 one-hot, a bool mask and the selection (indexing.ts). */
const oneHot: OpCost = {
  flops: (_a, out) => 3 * product(out),
  scratchBytes: (_a, out) => product(out) * (F32 + 1),
};

/** clip_by_value of int32 is a maximum then a minimum (comparison.ts). */
const clip: OpCost = {
  flops: (_a, out) => 2 * product(out),
  scratchBytes: (_a, out) => product(out) * F32,
};

/** The cost of every registry op, by name. */
export const OP_COSTS: Readonly<Record<string, OpCost>> = Object.freeze({
  // constants and random
  const: perOutput,
  zeros_like: perOutput,
  ones_like: perOutput,
  random_normal: { flops: (_a, out) => 4 * product(out) },
  // binary arithmetic, comparisons, logic
  add: perOutput,
  sub: perOutput,
  mul: perOutput,
  div: perOutput,
  pow: perOutput,
  floor_div: perOutput,
  mod: perOutput,
  maximum: broadcastBoth,
  minimum: broadcastBoth,
  squared_difference: broadcastBoth,
  equal: perOutput,
  not_equal: perOutput,
  less: perOutput,
  less_equal: perOutput,
  greater: perOutput,
  greater_equal: perOutput,
  logical_and: perOutput,
  logical_or: perOutput,
  logical_not: perOutput,
  where: perOutput,
  clip_by_value: clip,
  // unary
  neg: perOutput,
  abs: perOutput,
  square: perOutput,
  sign: perOutput,
  exp: perOutput,
  log: perOutput,
  log1p: perOutput,
  sqrt: perOutput,
  rsqrt: perOutput,
  relu: perOutput,
  sigmoid: perOutput,
  tanh: perOutput,
  softplus: perOutput,
  floor: perOutput,
  ceil: perOutput,
  round: perOutput,
  cast: perOutput,
  // reductions
  reduce_sum: perInput,
  reduce_max: perInput,
  reduce_min: perInput,
  reduce_prod: perInput,
  reduce_mean: perInput,
  reduce_any: perInput,
  reduce_all: perInput,
  argmax: perInput,
  argmin: perInput,
  norm,
  // linear algebra and nn
  matmul,
  softmax,
  log_softmax: softmax,
  // shapes, indexing, joins
  reshape: view,
  expand_dims: view,
  squeeze: view,
  transpose: perOutput,
  dim: scalar,
  size: scalar,
  slice: perOutput,
  gather: perOutput,
  one_hot: oneHot,
  concat: perOutput,
  stack: perOutput,
});

/** The cost entry of a registry op; ops without one are costed per result element. */
export function opCost(name: string): OpCost {
  return Object.prototype.hasOwnProperty.call(OP_COSTS, name) ? OP_COSTS[name]! : perOutput;
}
