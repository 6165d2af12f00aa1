import { AppError } from '../../errors';
import type { TffType } from '../types';

/**
 * A value inside a computation being built: the name of the node (or parameter) that produces it and its
 * statically known type. Handles belong to one computation; using one in another is an authoring mistake
 * the builder reports.
 */
export interface Handle {
  /** The node or parameter name, as it appears in `args`. */
  readonly name: string;
  /** The value's type, inferred as the node was added. */
  readonly type: TffType;
  /** The computation the handle belongs to (its label, e.g. `work` or `function loss`). */
  readonly owner: string;
}

/** A named function registered with a PlanBuilder, for `call`, `fold`, `repeat` and `value_and_grad`. */
export interface FnRef {
  /** The key in the plan's `functions`. */
  readonly name: string;
  /** The parameter type, absent for `( -> T)` functions. */
  readonly parameter?: TffType;
  /** The result type. */
  readonly result: TffType;
  /** Whether the function, or one it reaches, uses a server-only op (random_normal). */
  readonly serverOnly: boolean;
}

/**
 * Thrown when a computation being built is ill-typed; the message names the computation, the node and the
 * op, so that an authoring mistake is found where it is written rather than when the plan is submitted.
 */
export class BuildError extends AppError {
  constructor(message: string) {
    super('PLAN_TYPE_ERROR', message);
    this.name = 'BuildError';
  }
}
