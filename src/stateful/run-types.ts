/** The options and results of a reference run of a stateful program (src/stateful/reference.ts). */
import type { Limits } from '../compute/limits';
import type { JsonValue } from '../compute/value-json';
import type { Step } from './program';

/** Options of a reference run. */
export interface ProgramRunOptions {
  /**
   * Partial accumulators an aggregation spreads its contributions over (the k-th contribution goes to
   * partial k mod n), merged with `merge` as the aggregation workers' partials are. Default 2, so that
   * `merge` is exercised.
   */
  readonly partials?: number;
  /** Devices that lose their state (every handle) once the step of the given index has run. */
  readonly loseStateAfterStep?: ReadonlyMap<string, number>;
  /** Called with each step's log entry as the step completes. */
  readonly onStep?: (entry: StepLog) => void;
  /** Return every server value (as JSON), not only the outputs; for tests. */
  readonly serverValues?: boolean;
  readonly limits?: Limits;
}

/** A device whose session failed, and why. */
export interface FailedSession {
  readonly device: string;
  readonly step: number;
  readonly reason: string;
}

/** What one step did. */
export interface StepLog {
  readonly index: number;
  readonly op: Step['op'];
  /** Devices whose session is live once the step has run. */
  readonly live: number;
  /** An aggregate's contributions (the devices its result covers). */
  readonly contributed?: number;
  /** Sessions that failed in this step. */
  readonly failedSessions: readonly FailedSession[];
}

/** What a reference run produced. */
export interface ProgramRunResult {
  /**
   * The program's outputs, released only when every step has run: a program that fails releases none
   * (its aggregates' results were released to the server only, never to the operator).
   */
  readonly outputs: Readonly<Record<string, JsonValue>>;
  /** Every server value by name, with the `serverValues` option. */
  readonly values?: Readonly<Record<string, JsonValue>>;
  /** The devices recruited: the first `cohort.target_clients` given. */
  readonly cohort: readonly string[];
  readonly steps: readonly StepLog[];
  readonly failedSessions: readonly FailedSession[];
  /** Why and at which step the program failed, when it did. */
  readonly failed?: { readonly reason: string; readonly step: number };
}
