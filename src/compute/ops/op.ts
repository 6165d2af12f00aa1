import type * as tf from '@tensorflow/tfjs';
import type { TensorType } from '../types';

/** Thrown by an op's type inference or kernel; the checker and interpreter add the computation and node. */
export class OpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OpError';
  }
}

/** What a kernel may need beyond its inputs. */
export interface KernelContext {
  /** The round being evaluated (0 for initialize); seeds deterministic randomness together with a node's seed. */
  readonly round: number;
  /** The node's name, so that two seeded random nodes in one computation draw differently. */
  readonly node: string;
  /** The largest number of elements any tensor may have; kernels whose output size is data dependent check it. */
  readonly maxTensorElements: number;
}

/**
 * One tensor op: its signature as data (arity, attribute schema), its static type inference and its
 * TensorFlow.js kernel. Args and result are tensors; structural ops (struct, field, call, fold, repeat,
 * value_and_grad) are not in the registry, the checker and interpreter handle them.
 */
export interface OpDef<A = Record<string, unknown>> {
  readonly name: string;
  /** Exact number of args, or a range for variadic ops such as concat. */
  readonly arity: number | { readonly min: number; readonly max?: number };
  /** JSON Schema (draft-07) of `attrs`; validated with ajv before `infer` runs. */
  readonly attrs: object;
  /** True for ops only the server may run (random noise). */
  readonly serverOnly?: boolean;
  /**
   * The result type from the args' types and the attrs, which have passed the schema. Throws OpError naming
   * the argument (`arg 1`) or attribute when they do not fit.
   */
  infer(args: readonly TensorType[], attrs: A): TensorType;
  /** Runs the op. Called inside `tf.tidy`; must not dispose its inputs. */
  run(args: readonly tf.Tensor[], attrs: A, ctx: KernelContext): tf.Tensor;
}

/** Declares an op with typed attrs; the registry stores it as `OpDef<Record<string, unknown>>`. */
export function defineOp<A>(def: OpDef<A>): OpDef {
  return def as unknown as OpDef;
}
