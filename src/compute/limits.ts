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
  /**
   * Estimated peak memory in bytes of one evaluation of a computation the server or a worker runs
   * (initialize, prepare, zero, accumulate, merge, report, the secure-sum parameters, update), checked at
   * submit by the static cost model (docs/ir.md, "Cost model").
   */
  readonly maxPeakBytes: number;
  /** Estimated FLOPs of one evaluation of a computation the server or a worker runs. */
  readonly maxFlops: number;
  /** Estimated peak memory in bytes of one evaluation of `work` or `evaluate` (client data). */
  readonly maxClientPeakBytes: number;
  /** Estimated FLOPs of one evaluation of `work` or `evaluate`, over `costClientBatches` batches. */
  readonly maxClientFlops: number;
  /**
   * Batches of client data the cost model assumes a sequence holds: a client's data is unknown until it
   * runs `work`, so a fold over it is costed as this many batches per epoch.
   */
  readonly costClientBatches: number;
  /** Shortest selection timeout and reporting deadline a plan may set, in seconds. */
  readonly scheduleMinSeconds: number;
  /** Longest selection timeout and reporting deadline a plan may set, in seconds. */
  readonly scheduleMaxSeconds: number;
  /** Most rounds a plan may ask for (every round keeps its hash and broadcast until the plan is deleted). */
  readonly scheduleMaxRounds: number;
  /** Most target clients per round a plan may ask for. */
  readonly scheduleMaxTargetClients: number;
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
  maxPeakBytes: 1 << 30,
  maxFlops: 1e9,
  maxClientPeakBytes: 1 << 30,
  maxClientFlops: 1e11,
  costClientBatches: 100,
  scheduleMinSeconds: 1,
  scheduleMaxSeconds: 7 * 24 * 3600,
  scheduleMaxRounds: 100_000,
  scheduleMaxTargetClients: 100_000,
});

/** The defaults with some limits overridden. */
export function limitsWith(overrides: Partial<Limits> = {}): Limits {
  return Object.freeze({ ...DEFAULT_LIMITS, ...overrides });
}
