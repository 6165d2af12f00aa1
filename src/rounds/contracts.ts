import type { CheckedPlan } from '../plan/validate';
import type { TffType } from '../compute/types';
import type { DeadlineKind, PlanSummary, RoundRef } from '../store/types';

/** A stored plan, checked once per process and kept: plans are immutable once submitted. */
export interface LoadedPlan {
  readonly id: string;
  readonly checked: CheckedPlan;
  /** The type of work's result `<U, V1, V2, V3>`: what an upload bundle must hold. */
  readonly uploadType: TffType;
  /** The client plan document served to clients (work, the functions it reaches, client_data, types). */
  readonly clientPlan: { readonly json: string; readonly etag: string };
}

/** Loads plans by id from the store, checking each once per process. */
export interface PlanCache {
  get(id: string): Promise<LoadedPlan | undefined>;
  /** Drops a deleted plan, so that this process stops serving it. */
  forget(id: string): void;
}

/** The BullMQ jobs the API and the engine enqueue (docs/server.md, "Aggregation, exactly once"). */
export interface Jobs {
  /** Queues the accumulation of one accepted upload (job id `acc-<plan>-<n.a>-<task>`, so never twice). */
  accumulate(ref: RoundRef, task: string): Promise<void>;
  /** Queues the round's finalize job (job id `fin-<plan>-<n.a>`). */
  finalize(ref: RoundRef): Promise<void>;
  /**
   * Schedules the attempt's selection-timeout, SecAgg sharing-deadline and reporting-deadline jobs for the
   * given times (unix ms), one job per kind and time (job id `dl-<plan>-<n.a>-<kind>-<at>`): a job already
   * there is not doubled.
   */
  deadlines(ref: RoundRef, at: { readonly [K in DeadlineKind]?: number }): Promise<void>;
  /** Removes the deadline and finalize jobs of these attempts that wait or are delayed (a deleted plan). */
  forget(refs: readonly RoundRef[]): Promise<void>;
  close(): Promise<void>;
}

/** The round lifecycle: what happens when plans arrive, rounds open, deadlines pass, rounds finalize. */
export interface Engine {
  /**
   * Validates a plan (throws AppError with every problem), computes its initial state, stores it, opens
   * round 1 (prepare, broadcast, secure-sum parameters) and schedules its deadlines. `population`, when
   * given, publishes it there instead of the plan's own: a program's aggregation plan goes to a population
   * no device can name, so that only the program's sessions get its tasks.
   */
  submitPlan(plan: unknown, now?: number, population?: string): Promise<PlanSummary>;
  /** Handles a deadline job; a job for an attempt that moved on does nothing. */
  onDeadline(ref: RoundRef, kind: DeadlineKind, now?: number): Promise<void>;
  /**
   * Follows an operator's status change, once the store made it (`RoundStore.setStatus`, which also failed
   * a cancelled plan's attempt and moved a resumed attempt's deadlines): resuming schedules the open
   * attempt's deadline jobs at its moved deadlines.
   */
  onStatusChange(plan: string, status: 'active' | 'paused' | 'cancelled'): Promise<void>;
  /**
   * Finalizes a closed round once every reported upload is accumulated (throws a retryable error if not
   * yet): merge, min-clients check, report, secure sums, update, store, open the next round. Idempotent.
   */
  finalize(ref: RoundRef, now?: number): Promise<void>;
  /**
   * A plan fault while aggregating an attempt (an int32 accumulator overflowed, or its code crashed,
   * aborted or timed out in an isolate EVAL_FAULT_RETRIES times): the attempt fails with `error` and the
   * next one opens.
   */
  onPlanFault(ref: RoundRef, error: string, now?: number): Promise<void>;
}
