/* Generated from schemas/jobs.schema.json by scripts/gen-types.js; do not edit. */

/**
 * The payload of a job on the BullMQ queue `agg` (docs/server.md, "Aggregation, exactly once"). Jobs carry ids only, never tensors; workers validate every payload they read.
 */
export type AggregationJob = AccumulateJob | FinalizeJob | DeadlineJob | ReconcileJob;
/**
 * A plan id: `p` and 12 lowercase Crockford base32 characters (src/store/ids.ts).
 */
export type PlanId = string;
/**
 * A 1-based round or attempt number.
 */
export type RoundNumber = number;

/**
 * Fold one accepted upload into a worker's partial (job name `accumulate`).
 */
export interface AccumulateJob {
  plan: PlanId;
  round: RoundNumber;
  attempt: RoundNumber;
  /**
   * A task id: 22 base64url characters.
   */
  task: string;
}
/**
 * Finalize a closed round attempt (job name `finalize`).
 */
export interface FinalizeJob {
  plan: PlanId;
  round: RoundNumber;
  attempt: RoundNumber;
}
/**
 * A round attempt's selection timeout, SecAgg sharing deadline or reporting deadline has passed (job name `deadline`, delayed).
 */
export interface DeadlineJob {
  plan: PlanId;
  round: RoundNumber;
  attempt: RoundNumber;
  kind: 'selection' | 'sharing' | 'reporting';
}
/**
 * Drive every active or paused plan's rounds forward: deadlines passed, closed or finalizing rounds, finished attempts with no next one (job name `reconcile`, from a job scheduler).
 */
export interface ReconcileJob {}
