import type { SequenceType, TffType } from '../compute/types';

/** The types of a plan's MapReduce form, named as in TFF. */
export interface FormTypes {
  /** Server state. */
  readonly S: TffType;
  /** Broadcast (prepare's result). */
  readonly C: TffType;
  /** Client data: a sequence of batches. */
  readonly D: SequenceType;
  /** Update for simple aggregation. */
  readonly U: TffType;
  /** Updates for secure_sum_bitwidth, secure_sum (max_input) and secure_modular_sum. */
  readonly V: readonly [TffType, TffType, TffType];
  /** Accumulator. */
  readonly A: TffType;
  /** Aggregate (report's result). */
  readonly R: TffType;
  /** Server output of a round. */
  readonly X: TffType;
}
