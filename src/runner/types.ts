/** The options and results of a local run (src/runner/local-runner.ts). */
import type { Limits } from '../compute/limits';
import type { JsonValue } from '../compute/value-json';
import type { ClientExamples } from '../data';
import type { SecAggDropouts, SecAggRoundSummary } from './secagg-local';

/** Options of a local run; every one defaults to the plan's schedule. */
export interface LocalRunOptions {
  /** Rounds to run (default: the schedule's rounds). */
  readonly rounds?: number;
  /** Clients sampled per round (default: the schedule's target_clients). */
  readonly clientsPerRound?: number;
  /** Seeds client sampling; the same seed, plan and data give the same run. */
  readonly seed?: number;
  /**
   * Partial accumulators to spread a round's clients over (client i goes to partial i mod n), merged with
   * `merge` as the server's aggregation workers do. Default 2, so that `merge` is exercised.
   */
  readonly partials?: number;
  /** Held-out examples on which the plan's `evaluate` runs after each round. */
  readonly evaluationData?: ClientExamples;
  /**
   * Clients that drop out of the SecAgg exchange of `simulateRound`, drawn from the seed each round; only for
   * a plan that masks its secure sums.
   */
  readonly secAggDropouts?: SecAggDropouts;
  readonly limits?: Limits;
}

/** What one round produced. */
export interface LocalRoundResult {
  readonly round: number;
  /** The server output X of the round. */
  readonly output: JsonValue;
  /** How many clients' updates are in the aggregate. */
  readonly participants: number;
  /** Which clients, in sampling order. */
  readonly clients: readonly string[];
  /**
   * Sampled clients whose update was rejected (a secure-sum value out of range, a non-finite U, a broken
   * `reject` update bound), with the reason.
   */
  readonly rejected: readonly { readonly client: string; readonly reason: string }[];
  /** The plan's `evaluate` metrics on the held-out data, when both exist. */
  readonly evaluation?: JsonValue;
  /** What the SecAgg exchange did, in rounds `simulateRound` ran with it. */
  readonly secureAggregation?: SecAggRoundSummary;
  /**
   * A dp plan's round: the clip its records were clipped to, the plan's epsilon spent after it (at the
   * plan's delta), the next round's clip and (adaptive clipping) the noisy fraction of unclipped clients.
   */
  readonly dp?: {
    readonly clip: number;
    readonly epsilon: number;
    readonly next_clip: number;
    readonly unclipped_fraction?: number;
  };
}
