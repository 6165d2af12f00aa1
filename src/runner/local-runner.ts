import seedrandom from 'seedrandom';
import { applyUpdateBounds, boundsOf } from '../aggregation/update-bounds';
import { base64ToBytes, decodeBundle, encodeBundle, readTypedBundle, writeBundle } from '../codec';
import { Interpreter } from '../compute/interpreter';
import { DEFAULT_LIMITS, type Limits } from '../compute/limits';
import { disposeValue, isStruct, structValue, tensorsOf, type Value } from '../compute/value';
import { valueToJson, type JsonValue } from '../compute/value-json';
import { toBatches, type ClientExamples } from '../data';
import { AppError } from '../errors';
import type { Plan } from '../generated/plan';
import { checkPlan, type CheckedPlan } from '../plan/validate';
import { allSecureParams, mergeAll, newSecureSums, updateStep } from '../rounds/form-steps';

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
}

/**
 * Runs a plan's rounds in one process, exactly as the design's round pseudo-code says: C = prepare(S); each
 * sampled client runs work(D_i, C); updates are accumulated into partials from zero(), merged, and reported;
 * the secure-sum updates are summed with their bitwidth / max_input / modulus semantics; (S', X) =
 * update(S, <R, V1sum, V2sum, V3sum>). It is how authors test a plan before publishing it, and the reference
 * the server's results are compared with. The final server state is available from `state()` after the run.
 */
export class LocalRunner {
  readonly checked: CheckedPlan;
  private readonly interpreter: Interpreter;
  private readonly limits: Limits;
  private serverState: Value | undefined;
  private roundsDone = 0;

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
      throw new AppError(
        'BAD_REQUEST',
        `${perRound} clients per round is fewer than the plan's min_reports (${minReports})`,
      );
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

  /** Runs every round, yielding each result as it completes. */
  *rounds(): Generator<LocalRoundResult> {
    const total = this.options.rounds ?? this.plan.schedule.rounds;
    while (this.roundsDone < total) yield this.runRound();
  }

  /** Releases the server state's tensors. */
  dispose(): void {
    if (this.serverState) disposeValue(this.serverState);
    this.serverState = undefined;
  }

  /** Runs the next round. */
  runRound(): LocalRoundResult {
    const S = this.state();
    const round = this.roundsDone + 1;
    const { plan } = this.checked;
    const run = (slot: keyof Plan['computations'], arg?: Value) =>
      this.interpreter.run(plan.computations[slot], arg, { round, label: slot });
    const owned: Value[] = [];
    const keep = <T extends Value>(v: T): T => {
      owned.push(v);
      return v;
    };
    try {
      const C = keep(run('prepare', S));
      const chosen = this.sampleClients(round);
      const partials = Math.max(1, Math.min(this.options.partials ?? 2, chosen.length));
      const accs: Value[] = Array.from({ length: partials }, () => run('zero'));
      const secure = newSecureSums(this.checked, allSecureParams(this.interpreter, this.checked, round));
      const included: string[] = [];
      const rejected: { client: string; reason: string }[] = [];
      chosen.forEach((id, i) => {
        const data = toBatches(this.clients.get(id)!, plan.client_data.element, plan.client_data.batch_size);
        try {
          const out = this.interpreter.run(
            plan.computations.work,
            structValue([
              [undefined, data],
              [undefined, C],
            ]),
            {
              round,
              label: `work (client ${id})`,
            },
          );
          try {
            if (!isStruct(out)) throw new Error('work did not return a struct');
            const [sent, ...V] = out.fields.map((f) => f.value) as [Value, Value, Value, Value];
            const values = V.map((v) => tensorsOf(v).map((t) => t.dataSync()));
            // TFF fails a client whose secure-sum value is out of range; it then counts in no aggregate.
            // A non-finite U or a broken `reject` update bound refuses the client the same way, as the server's
            // upload route does.
            let U: Value;
            try {
              values.forEach((v, k) => secure[k]!.check(v));
              U = boundedUpdate(this.checked, sent);
            } catch (e) {
              if (!(e instanceof AppError)) throw e;
              rejected.push({ client: id, reason: e.message });
              return;
            }
            values.forEach((v, k) => secure[k]!.add(v));
            included.push(id);
            const p = i % partials;
            let next: Value;
            try {
              next = run(
                'accumulate',
                structValue([
                  [undefined, accs[p]!],
                  [undefined, U],
                ]),
              );
            } finally {
              if (U !== sent) disposeValue(U);
            }
            disposeValue(accs[p]!);
            accs[p] = next;
          } finally {
            disposeValue(out);
          }
        } finally {
          disposeValue(data);
        }
      });
      const merged = keep(mergeAll(this.interpreter, plan, accs, round));
      const minAggregate =
        plan.schedule.min_clients_in_aggregate ?? plan.schedule.min_reports ?? plan.schedule.target_clients;
      if (included.length < minAggregate) {
        throw new AppError(
          'BAD_REQUEST',
          `round ${round} has ${included.length} clients in its aggregate, fewer than min_clients_in_aggregate (${minAggregate})`,
        );
      }
      const R = keep(run('report', merged));
      const { state: nextState, output } = updateStep(this.interpreter, this.checked, S, R, secure, round);
      disposeValue(S);
      this.serverState = nextState;
      this.roundsDone = round;
      const evaluation = this.evaluate(round);
      return {
        round,
        output,
        participants: included.length,
        clients: included,
        rejected,
        ...(evaluation !== undefined ? { evaluation } : {}),
      };
    } finally {
      for (const v of owned) disposeValue(v);
    }
  }

  /** Runs the plan's `evaluate` on the held-out data with the current state, if both exist. */
  evaluate(round = this.roundsDone): JsonValue | undefined {
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
          [undefined, this.state()],
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

/**
 * U after the plan's update bounds, computed by the same function on the same typed arrays as the server's
 * upload route (through a bundle of U), so local results match the server's: a non-finite U or one that
 * breaks a `reject` bound throws AppError. U itself when nothing changed, else a fresh value the caller
 * disposes.
 */
function boundedUpdate(checked: CheckedPlan, U: Value): Value {
  const bounds = boundsOf(checked);
  const type = checked.types.U;
  // The server refuses a non-finite update (BUNDLE_NOT_FINITE) before its bounds; so does this.
  const { tensors } = readTypedBundle(encodeBundle(U, type), type, { requireFinite: true });
  if (!bounds) return U;
  const { data, changed } = applyUpdateBounds(
    bounds,
    tensors.map((t) => t.data),
  );
  if (!changed) return U;
  return decodeBundle(writeBundle(tensors.map((t, k) => ({ ...t, data: data[k]! }))), type);
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
