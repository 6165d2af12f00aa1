/**
 * Resource limits that keep a hostile or careless plan from exhausting a server, worker or client.
 * Static limits are checked when a plan is submitted, dynamic ones while it runs.
 */
export interface Limits {
  /** Nodes in one computation. */
  readonly maxNodesPerComputation: number;
  /** Nodes in a whole plan (all computations and functions). */
  readonly maxNodesPerPlan: number;
  /** Elements of any one tensor (static shapes at check time, actual shapes at run time). */
  readonly maxTensorElements: number;
  /** `repeat` count and `fold` epochs. */
  readonly maxLoopCount: number;
  /** Batches processed by one `fold`, epochs included, at run time. */
  readonly maxFoldSteps: number;
  /** Ops executed in one evaluation of a computation, at run time. */
  readonly maxOpsExecuted: number;
  /** Depth of nested calls (call, fold, repeat, value_and_grad). */
  readonly maxCallDepth: number;
}

/** The defaults documented in docs/ir.md. */
export const DEFAULT_LIMITS: Limits = Object.freeze({
  maxNodesPerComputation: 10_000,
  maxNodesPerPlan: 100_000,
  maxTensorElements: 16_777_216,
  maxLoopCount: 10_000,
  maxFoldSteps: 100_000,
  maxOpsExecuted: 10_000_000,
  maxCallDepth: 32,
});

/** The defaults with some limits overridden. */
export function limitsWith(overrides: Partial<Limits> = {}): Limits {
  return Object.freeze({ ...DEFAULT_LIMITS, ...overrides });
}
