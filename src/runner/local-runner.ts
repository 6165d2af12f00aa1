import seedrandom from 'seedrandom';
import type { SecureSum } from '../aggregation/secure-sum';
import { base64ToBytes, decodeBundle } from '../codec';
import { Interpreter } from '../compute/interpreter';
import { DEFAULT_LIMITS, type Limits } from '../compute/limits';
import { disposeValue, structValue, type Value } from '../compute/value';
import { valueToJson, type JsonValue } from '../compute/value-json';
import { toBatches, type ClientExamples } from '../data';
import { AppError } from '../errors';
import type { Plan } from '../generated/plan';
import { checkFirstRound, epsilonSpent, overBudget } from '../dp/budget';
import { broadcastClip, noisyAggregate, noisySecureSum, serverSums, zeroed } from '../dp/mechanism';
import { dpOf, type DpSetting } from '../plan/dp-check';
import { checkPlan, type CheckedPlan } from '../plan/validate';
import { allSecureParams, mergeAll, newSecureSums, runSlot, updateStep } from '../rounds/form-steps';
import { secAggSetting } from '../secagg/setup';
import { clientTurn, type OpenRound } from './client-turn';
import { LocalSecAggRound, checkDropouts, type SecAggDropouts } from './secagg-local';
import type { LocalRoundResult, LocalRunOptions } from './types';

export type { SecAggDropouts, SecAggRoundSummary } from './secagg-local';
export type { LocalRoundResult, LocalRunOptions } from './types';
// Stateful programs' in-process reference run, beside the plans' local runner (`roundhouse/runner`).
export { runProgram, type ProgramRunOptions, type ProgramRunResult } from '../stateful/reference';

/**
 * Runs a plan's rounds in one process, exactly as the design's round pseudo-code says: C = prepare(S); each
 * sampled client runs work(D_i, C); updates are accumulated into partials from zero(), merged, and reported;
 * the secure-sum updates are summed with their bitwidth / max_input / modulus semantics; (S', X) =
 * update(S, <R, V1sum, V2sum, V3sum>). It is how authors test a plan before publishing it, and the reference
 * the server's results are compared with. The final server state is available from `state()` after the run.
 * `runRound` adds the secure sums in the clear; `simulateRound` plays the SecAgg exchange the plan asks for
 * between the sampled clients, dropouts included, as `run-local` does.
 */
export class LocalRunner {
  readonly checked: CheckedPlan;
  private readonly interpreter: Interpreter;
  private readonly limits: Limits;
  private serverState: Value | undefined;
  private roundsDone = 0;
  /** Whether the plan masks its secure sums (SecAgg), and the dropouts to simulate then. */
  private readonly secAgg: boolean;
  private readonly dropouts: SecAggDropouts | undefined;
  /** A dp plan's setting and the next round's clip. */
  private readonly dp: DpSetting | undefined;
  private dpClip: number | undefined;
  /** Why a dp plan stopped before its last round (its privacy budget), once it has. */
  private stopped: string | undefined;

  constructor(
    plan: unknown,
    private readonly clients: ReadonlyMap<string, ClientExamples>,
    private readonly options: LocalRunOptions = {},
  ) {
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.checked = checkPlan(plan, this.limits);
    this.interpreter = new Interpreter(this.checked.plan.functions ?? {}, this.limits);
    const s = this.checked.plan.schedule;
    const minReports = s.min_reports ?? s.target_clients;
    const perRound = Math.min(this.options.clientsPerRound ?? s.target_clients, clients.size);
    if (perRound < minReports) {
      // Say which knob turns: the data's client count, the run's per-round count, or the plan's schedule.
      const why =
        clients.size < minReports
          ? `the data has ${clients.size} clients, fewer than the plan's min_reports (${minReports}): build the ` +
            `plan with --target-clients ${clients.size} (or fewer; --min-reports too if it sets one), or give more clients`
          : `${perRound} clients per round is fewer than the plan's min_reports (${minReports}): ` +
            `raise --clients-per-round to at least ${minReports}`;
      throw new AppError('BAD_REQUEST', why);
    }
    this.secAgg = secAggSetting(this.checked.plan) !== undefined;
    this.dropouts = options.secAggDropouts;
    this.dp = dpOf(this.checked);
    if (this.dp) checkFirstRound(this.dp);
    this.dpClip = this.dp?.initialClip;
    if (this.dropouts) {
      if (!this.secAgg) {
        throw new AppError(
          'BAD_REQUEST',
          'SecAgg dropouts need a plan that masks its secure sums (schedule.secure_aggregation secagg+ or secagg)',
        );
      }
      checkDropouts(this.dropouts);
    }
  }

  /** The plan being run. */
  get plan(): Plan {
    return this.checked.plan;
  }

  /** The current server state (after the last completed round); owned by the runner. */
  state(): Value {
    return (this.serverState ??= this.initialState());
  }

  /** Runs every round with the secure sums in the clear (`runRound`), yielding each result as it completes. */
  *rounds(): Generator<LocalRoundResult> {
    while (this.hasNextRound()) yield this.runRound();
  }

  /**
   * Whether another round runs: rounds are left and, for a dp plan, the next one stays within the privacy
   * budget (the server completes the plan instead; `stopReason` then says why).
   */
  hasNextRound(): boolean {
    if (this.roundsDone >= this.totalRounds || this.stopped !== undefined) return false;
    if (this.dp) this.stopped = overBudget(this.dp, this.roundsDone + 1);
    return this.stopped === undefined;
  }

  /** Why a dp plan stopped before its last round, once it has. */
  get stopReason(): string | undefined {
    return this.stopped;
  }

  /** Runs every round as the server would (`simulateRound`), yielding each result as it completes. */
  async *simulateRounds(): AsyncGenerator<LocalRoundResult> {
    while (this.hasNextRound()) yield await this.simulateRound();
  }

  /** What a client's turn runs with. */
  private get steps(): { readonly interpreter: Interpreter; readonly checked: CheckedPlan } {
    return { interpreter: this.interpreter, checked: this.checked };
  }

  private get totalRounds(): number {
    return this.options.rounds ?? this.plan.schedule.rounds;
  }

  /** Releases the server state's tensors. */
  dispose(): void {
    if (this.serverState) disposeValue(this.serverState);
    this.serverState = undefined;
  }

  /**
   * Runs the next round with its secure sums added in the clear: what a SecAgg round releases when no client
   * leaves before its upload, and the reference `simulateRound` is held to. Synchronous, so it cannot play
   * the exchange (whose secret sharing is asynchronous) or its dropouts.
   */
  runRound(): LocalRoundResult {
    if (this.dropouts) {
      throw new AppError('BAD_REQUEST', 'SecAgg dropouts are simulated by simulateRound, not runRound');
    }
    const r = this.openRound();
    try {
      const secure = newSecureSums(this.checked, r.params);
      r.chosen.forEach((id, i) =>
        clientTurn(this.steps, r, { id, index: i, examples: this.clients.get(id)! }, (values) => {
          values.forEach((v, k) => secure[k]!.check(v));
          return () => values.forEach((v, k) => secure[k]!.add(v));
        }),
      );
      this.checkAggregate(r);
      return this.closeRound(r, secure);
    } finally {
      this.release(r);
    }
  }

  /**
   * Runs the next round as the server would: when the plan masks its secure sums
   * (`schedule.secure_aggregation` secagg+ or secagg), the sampled clients play the SecAgg exchange in
   * memory, with the options' dropouts, and only the unmasked sums reach `update`; other plans run as
   * `runRound`. Throws AppError SECAGG_BELOW_THRESHOLD when too few clients are left to unmask, which fails
   * the round on the server; the state then stays where it was.
   */
  async simulateRound(): Promise<LocalRoundResult> {
    if (!this.secAgg) return this.runRound();
    const r = this.openRound();
    try {
      const exchange = await LocalSecAggRound.open(
        this.plan,
        r.params,
        r.chosen,
        `${this.options.seed ?? 0}:${r.round}`,
        this.dropouts ?? {},
      );
      r.chosen.forEach((id, i) => {
        if (exchange.leavesAfterShares(i)) return;
        clientTurn(this.steps, r, { id, index: i, examples: this.clients.get(id)! }, (values) =>
          exchange.mask(i, values),
        );
      });
      this.checkAggregate(r);
      let secure: SecureSum[];
      try {
        secure = await exchange.unmask();
      } catch (e) {
        if (!(e instanceof AppError)) throw e;
        throw new AppError(e.code, `round ${r.round}: secure aggregation: ${e.message}`, e.details);
      }
      return { ...this.closeRound(r, secure), secureAggregation: exchange.summary() };
    } finally {
      this.release(r);
    }
  }

  /** Prepares the broadcast, samples the clients, opens their partial accumulators, fixes the secure sums. */
  private openRound(): OpenRound {
    const round = this.roundsDone + 1;
    const S = this.state();
    const owned: Value[] = [];
    const accs: Value[] = [];
    try {
      const prepared = runSlot(this.interpreter, this.plan, 'prepare', round, S);
      owned.push(prepared);
      const C = this.dp ? broadcastClip(this.dp, prepared, this.dpClip!) : prepared;
      if (C !== prepared) owned.push(C);
      const chosen = this.sampleClients(round);
      const partials = Math.max(1, Math.min(this.options.partials ?? 2, chosen.length));
      for (let p = 0; p < partials; p++) {
        const zero = runSlot(this.interpreter, this.plan, 'zero', round);
        if (!this.dp) accs.push(zero);
        else {
          accs.push(zeroed(this.dp, zero));
          disposeValue(zero);
        }
      }
      const params = allSecureParams(this.interpreter, this.checked, round);
      const dpClip = this.dpClip === undefined ? {} : { dpClip: this.dpClip };
      return { round, S, C, chosen, accs, params, included: [], rejected: [], owned, ...dpClip };
    } catch (e) {
      for (const v of [...owned, ...accs]) disposeValue(v);
      throw e;
    }
  }

  private checkAggregate(r: OpenRound): void {
    const s = this.plan.schedule;
    const minAggregate = s.min_clients_in_aggregate ?? s.min_reports ?? s.target_clients;
    if (r.included.length < minAggregate) {
      throw new AppError(
        'BAD_REQUEST',
        `round ${r.round} has ${r.included.length} clients in its aggregate, fewer than min_clients_in_aggregate (${minAggregate})`,
      );
    }
  }

  /** merge, report and update with the round's secure sums; then the evaluation. */
  private closeRound(r: OpenRound, secure: readonly SecureSum[]): LocalRoundResult {
    const dpSums = this.dp ? serverSums(this.dp, r.accs) : [];
    let merged = mergeAll(this.interpreter, this.plan, r.accs.splice(0), r.round);
    r.owned.push(merged);
    let dp: LocalRoundResult['dp'];
    if (this.dp) {
      const noisy = noisyAggregate(this.dp, merged, dpSums, r.included.length, r.dpClip!);
      r.owned.push(noisy.acc);
      merged = noisy.acc;
      const { clip, nextClip, unclippedFraction } = noisy.result;
      dp = {
        clip,
        epsilon: epsilonSpent(this.dp, r.round),
        next_clip: nextClip,
        ...(unclippedFraction === undefined ? {} : { unclipped_fraction: unclippedFraction }),
      };
    }
    const R = runSlot(this.interpreter, this.plan, 'report', r.round, merged);
    r.owned.push(R);
    let sums = secure;
    if (this.dp?.secure) {
      const k = this.dp.secure.index;
      sums = secure.map((s, i) => (i === k ? noisySecureSum(this.dp!, s, r.included.length, r.dpClip!) : s));
    }
    const { state, output } = updateStep(this.interpreter, this.checked, r.S, R, sums, r.round);
    disposeValue(r.S);
    this.serverState = state;
    this.roundsDone = r.round;
    if (dp) this.dpClip = dp.next_clip;
    const evaluation = this.evaluate(r.round);
    return {
      round: r.round,
      output,
      participants: r.included.length,
      clients: r.included,
      rejected: r.rejected,
      ...(evaluation !== undefined ? { evaluation } : {}),
      ...(dp ? { dp } : {}),
    };
  }

  /** Disposes what the round made (the state is the runner's). */
  private release(r: OpenRound): void {
    for (const v of [...r.owned, ...r.accs.splice(0)]) disposeValue(v);
  }

  /**
   * Runs the plan's `evaluate` on the held-out data with a server state (default the current one), if both
   * exist; another state is how a test scores a model the server trained.
   */
  evaluate(round = this.roundsDone, state?: Value): JsonValue | undefined {
    const { plan } = this.checked;
    if (!plan.evaluate || !this.options.evaluationData) return undefined;
    const data = toBatches(
      this.options.evaluationData,
      plan.client_data.element,
      plan.client_data.batch_size,
    );
    try {
      const metrics = this.interpreter.run(
        plan.evaluate,
        structValue([
          [undefined, state ?? this.state()],
          [undefined, data],
        ]),
        {
          round,
          label: 'evaluate',
        },
      );
      try {
        return valueToJson(metrics);
      } finally {
        disposeValue(metrics);
      }
    } finally {
      disposeValue(data);
    }
  }

  private initialState(): Value {
    const { plan, types } = this.checked;
    if (plan.initialize)
      return this.interpreter.run(plan.initialize, undefined, { round: 0, label: 'initialize' });
    return decodeBundle(base64ToBytes(plan.initial_state!.data), types.S);
  }

  /** The clients round `round` samples, without replacement, deterministically from the seed and round. */
  sampleClients(round: number): string[] {
    const ids = [...this.clients.keys()];
    const n = Math.min(this.options.clientsPerRound ?? this.plan.schedule.target_clients, ids.length);
    const rng = seedrandom(`${this.options.seed ?? 0}:${round}`);
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(rng() * (ids.length - i));
      [ids[i], ids[j]] = [ids[j]!, ids[i]!];
    }
    return ids.slice(0, n);
  }
}

/** Runs every round of a plan locally and returns the results and the final state as JSON. */
export function runLocal(
  plan: unknown,
  clients: ReadonlyMap<string, ClientExamples>,
  options: LocalRunOptions = {},
): LocalRoundResult[] {
  const runner = new LocalRunner(plan, clients, options);
  try {
    return [...runner.rounds()];
  } finally {
    runner.dispose();
  }
}

/**
 * Runs every round of a plan locally as the server would (`simulateRound`: the SecAgg exchange, with its
 * dropouts, for a plan that masks its secure sums) and returns the results.
 */
export async function simulateLocal(
  plan: unknown,
  clients: ReadonlyMap<string, ClientExamples>,
  options: LocalRunOptions = {},
): Promise<LocalRoundResult[]> {
  const runner = new LocalRunner(plan, clients, options);
  try {
    const results: LocalRoundResult[] = [];
    for await (const r of runner.simulateRounds()) results.push(r);
    return results;
  } finally {
    runner.dispose();
  }
}
