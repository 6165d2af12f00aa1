/**
 * A population of simulated clients against a live server: N {@link RoundhouseClient}s in this process,
 * each with its own examples from a {@link Population} (a share of the digits, or one client of a clients
 * CSV), checking in over real HTTP and honouring their retry windows, some dropping out after download and
 * some uploading late. The simulator watches the plan through the operator API and reports every round
 * attempt that finishes, with held-out accuracy when it has the plan's `evaluate` and held-out examples.
 */
import { setMaxListeners } from 'node:events';
import seedrandom from 'seedrandom';
import { RoundhouseClient } from '../client/client';
import { realClock, scaledClock } from '../client/clock';
import { newDeviceId } from '../client/device';
import { errorFromResponse, isRoundhouseError } from '../client/errors';
import { MemoryExampleStore } from '../client/example-store';
import type { ClientPlan } from '../client/types';
import type { JsonValue } from '../compute/value-json';
import type { PlanSummary } from '../store/types';
import { accuracyOf, HeldOutEvaluator } from './evaluator';
import { OperatorApi, type RoundRow } from '../client/operator';
import type { Population } from './population';
import { Tally } from './tally';

/** Options of {@link simulate}; the defaults are those of `roundhouse simulate`. */
export interface SimulationOptions {
  readonly server: string;
  /** Operator token: the simulator reads the plan's rounds and state. */
  readonly token: string;
  readonly planId: string;
  /** The plan JSON; with an `evaluate` computation, each round's state is evaluated on held-out data. */
  readonly plan?: unknown;
  /** The simulated clients' data: one device per client of the population. */
  readonly population: Population;
  /** Seeds every client's randomness and behaviour (dropout, stragglers) (default 0). */
  readonly seed?: number;
  /** Chance that a task is dropped after download, before upload (default 0). */
  readonly dropout?: number;
  /**
   * Rounds with secure aggregation: chance that a task that uploaded leaves before the unmasking step
   * (default 0). Its input stays in the sum: its neighbours' shares take its masks off.
   */
  readonly unmaskDropout?: number;
  /** Chance that a task's upload is held back `slowDelayS` (default 0). */
  readonly slow?: number;
  readonly slowDelayS?: number;
  /** Multiplies every client wait: retry windows, backoff, pauses, slow delays (default 1). */
  readonly timeScale?: number;
  /** A client's pause after a task before it checks in again, in seconds (default 0). */
  readonly pauseAfterTaskS?: number;
  /** Stop after this many completed rounds. */
  readonly rounds?: number;
  /** Stop once held-out accuracy reaches this (it needs the population's held-out examples). */
  readonly targetAccuracy?: number;
  /** How often the plan's rounds are read, in ms (default 200). */
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
  readonly onRound?: (s: RoundSummary) => void;
  readonly onProgress?: (p: RoundProgress) => void;
  /** A client's failed task or check-in (after its retries). */
  readonly onClientError?: (e: unknown) => void;
  /**
   * How long the simulation waits for a server it cannot read (down, restarting, answering 5xx) before it
   * gives up, in ms (default 300,000). Its clients back off and carry on meanwhile, as real devices do.
   */
  readonly serverPatienceMs?: number;
  /** The server could not be read (`error`), or can be again (undefined), once per outage. */
  readonly onServerTrouble?: (error: unknown) => void;
}

/** The round attempt in progress. */
export interface RoundProgress {
  readonly round: number;
  readonly attempt: number;
  /** The plan's total rounds. */
  readonly rounds: number;
  readonly phase: string;
  readonly target: number;
  readonly assigned: number;
  readonly reported: number;
  readonly dropped: number;
}

/** One finished round attempt. */
export interface RoundSummary {
  readonly round: number;
  readonly attempt: number;
  readonly rounds: number;
  readonly status: 'completed' | 'failed';
  /** Clients inside the aggregate (the server's `aggregated_clients`). */
  readonly participants: number;
  readonly assigned: number;
  readonly reported: number;
  readonly rejected: number;
  /** Tasks dropped after download: before the upload, or (secure aggregation) after it, before unmasking. */
  readonly dropped: number;
  /** Uploads refused as late, plus stragglers still holding theirs (the round is over: they will be). */
  readonly late: number;
  readonly abandoned: number;
  /** Tasks that failed with an error. */
  readonly errors: number;
  readonly output: unknown;
  readonly error?: string;
  /** Rounds with secure aggregation: the protocol and how many clients got through each of its steps. */
  readonly secureAggregation?: RoundRow['secure_aggregation'];
  /** The plan's `evaluate` on held-out data for the state after this round. */
  readonly evaluation?: JsonValue;
  readonly accuracy?: number;
  /** How long the attempt took on the server, open to finished. */
  readonly seconds: number;
}

/** Why a simulation stopped. */
export type StopReason = 'plan-finished' | 'rounds' | 'target-accuracy' | 'aborted';

/** What a simulation did. */
export interface SimulationResult {
  readonly rounds: readonly RoundSummary[];
  readonly reason: StopReason;
  readonly plan: PlanSummary;
  /** The last held-out accuracy measured. */
  readonly accuracy?: number;
  readonly elapsedMs: number;
}

const FINISHED = new Set(['completed', 'failed']);
const tagOf = (r: { round: number; attempt: number }): string => `${r.round}.${r.attempt}`;

/** Runs the population until the plan finishes, `rounds` rounds complete, or `targetAccuracy` is reached. */
export async function simulate(options: SimulationOptions): Promise<SimulationResult> {
  const started = Date.now();
  const { server, planId } = options;
  const api = new OperatorApi(server, options.token);
  const first = await api.plan(planId);
  const clientPlan = await fetchClientPlan(server, planId);
  // Checked before any client starts: data that does not fit the plan fails here, naming where.
  const data = options.population.load(clientPlan.client_data.element, `plan ${planId}`);
  const evaluator =
    options.plan !== undefined && data.heldOut !== undefined && HeldOutEvaluator.supports(options.plan)
      ? new HeldOutEvaluator(options.plan, data.heldOut)
      : undefined;

  const stop = new AbortController();
  // Every client's loop, waits and requests listen to this one signal: hundreds of listeners are expected.
  setMaxListeners(0, stop.signal);
  const onOuterAbort = (): void => stop.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const tally = new Tally();
  const clock = options.timeScale === undefined ? realClock : scaledClock(options.timeScale);
  const seed = options.seed ?? 0;
  const dropout = options.dropout ?? 0;
  const slow = options.slow ?? 0;
  const unmaskDropout = options.unmaskDropout ?? 0;
  let fatal: unknown;
  const runId = newDeviceId().slice(0, 8);
  const loops = data.clients.map((examples, i) => {
    const behaviour = seedrandom(`${seed}:behaviour:${i}`);
    const client = new RoundhouseClient({
      server,
      population: first.population,
      store: new MemoryExampleStore({ [clientPlan.client_data.collection]: examples }),
      // One device per simulated client; the run id keeps two simulations against one server apart.
      deviceId: `sim-${runId}-${i}`,
      clock,
      random: seedrandom(`${seed}:client:${i}`),
      beforeUpload: async (a) => {
        const r = behaviour();
        if (r < dropout) return false;
        if (r < dropout + slow) {
          tally.hold(a);
          await clock.sleep((options.slowDelayS ?? 0) * 1000, stop.signal);
        }
        return true;
      },
      beforeUnmask: () => behaviour() >= unmaskDropout,
    });
    return client
      .run({
        signal: stop.signal,
        onOutcome: (o) => tally.record(o),
        onError: (e, a) => {
          tally.error(e, a);
          options.onClientError?.(e);
        },
        pauseAfterTaskMs: (options.pauseAfterTaskS ?? 0) * 1000,
      })
      .catch((e: unknown) => {
        // A check-in refused for good (a wrong population or URL): every client would hit it.
        fatal ??= e;
        stop.abort(e);
      });
  });

  // Attempts already over when the simulation joined are not its rounds.
  const seen = new Set((await api.rounds(planId)).filter((r) => FINISHED.has(r.phase)).map(tagOf));
  const summaries: RoundSummary[] = [];
  let accuracy: number | undefined;
  let reason: StopReason = 'aborted';
  let plan = first;
  // A server that cannot be read for a while (restarting) is waited for, like the clients wait for it.
  let outageSince: number | undefined;
  let outageWaits = 0;
  try {
    for (;;) {
      if (fatal !== undefined) throw fatal;
      if (stop.signal.aborted) break;
      try {
        [plan, reason] = await pollOnce();
      } catch (e) {
        if (!isRoundhouseError(e) || !e.transient) throw e;
        const now = Date.now();
        if (outageSince === undefined) {
          outageSince = now;
          options.onServerTrouble?.(e);
        }
        if (now - outageSince > (options.serverPatienceMs ?? 300_000)) throw e;
        const backoff = Math.min(5000, 200 * 2 ** outageWaits++);
        await realClock.sleep(backoff, stop.signal).catch(() => undefined);
        continue;
      }
      if (outageSince !== undefined) {
        outageSince = undefined;
        outageWaits = 0;
        options.onServerTrouble?.(undefined);
      }
      if (reason !== 'aborted') break;
      await realClock.sleep(options.pollMs ?? 200, stop.signal).catch(() => undefined);
    }
  } finally {
    stop.abort();
    options.signal?.removeEventListener('abort', onOuterAbort);
    await Promise.all(loops);
    evaluator?.dispose();
  }
  if (fatal !== undefined) throw fatal;
  return { rounds: summaries, reason, plan, accuracy, elapsedMs: Date.now() - started };

  /** Reads the plan once: reports finished attempts, shows progress, and says whether to stop. */
  async function pollOnce(): Promise<[PlanSummary, StopReason]> {
    const [before, rows] = await Promise.all([api.plan(planId), api.rounds(planId)]);
    const finished = rows
      .filter((r) => FINISHED.has(r.phase) && !seen.has(tagOf(r)))
      .sort((a, b) => a.round - b.round || a.attempt - b.attempt);
    const latest = finished.filter((r) => r.phase === 'completed').pop();
    let evaluation: JsonValue | undefined;
    let report = finished;
    if (evaluator && latest) {
      const state = await api.state(planId);
      const after = await api.plan(planId);
      // The state is the one after `latest` only if no round completed around the read.
      if (stateRound(before) === latest.round && stateRound(after) === latest.round) {
        evaluation = evaluator.evaluate(state, latest.round);
      } else if (stateRound(after) <= latest.round) {
        // The plan was read before the round's state was committed (the rounds were read after it): the
        // round is reported at the next look, with its evaluation, rather than without one for good.
        report = finished.filter((r) => r.round < latest.round);
      }
    }
    for (const r of report) {
      seen.add(tagOf(r));
      const s = summarize(r, before.rounds, r === latest ? evaluation : undefined);
      summaries.push(s);
      if (s.accuracy !== undefined) accuracy = s.accuracy;
      options.onRound?.(s);
    }
    const done = summaries.filter((s) => s.status === 'completed').length;
    if (
      options.targetAccuracy !== undefined &&
      accuracy !== undefined &&
      accuracy >= options.targetAccuracy
    ) {
      return [before, 'target-accuracy'];
    }
    if (options.rounds !== undefined && done >= options.rounds) return [before, 'rounds'];
    if (before.status !== 'active' && before.status !== 'paused') return [before, 'plan-finished'];
    const current = rows.find((r) => r.round === before.round && r.attempt === before.attempt);
    if (current && !FINISHED.has(current.phase)) {
      options.onProgress?.({
        round: current.round,
        attempt: current.attempt,
        rounds: before.rounds,
        phase: current.phase,
        target: current.target,
        assigned: current.assigned,
        reported: current.reported,
        dropped: tally.of(current.round, current.attempt).dropped,
      });
    }
    return [before, 'aborted'];
  }

  function summarize(r: RoundRow, rounds: number, evaluation: JsonValue | undefined): RoundSummary {
    const t = tally.of(r.round, r.attempt);
    const acc = accuracyOf(evaluation);
    return {
      round: r.round,
      attempt: r.attempt,
      rounds,
      status: r.phase === 'completed' ? 'completed' : 'failed',
      participants: r.aggregated_clients,
      assigned: r.assigned,
      reported: r.reported,
      rejected: r.rejected,
      dropped: t.dropped,
      late: Math.max(r.late, t.late) + t.holding.size,
      abandoned: t.abandoned,
      errors: t.errors,
      output: r.output ?? null,
      ...(r.error ? { error: r.error } : {}),
      ...(r.secure_aggregation ? { secureAggregation: r.secure_aggregation } : {}),
      ...(evaluation !== undefined ? { evaluation } : {}),
      ...(acc !== undefined ? { accuracy: acc } : {}),
      seconds: ((r.finished_at ?? Date.now()) - r.opened_at) / 1000,
    };
  }
}

/** The round whose result the plan's current state is: the current one once completed, else the one before. */
function stateRound(p: PlanSummary): number {
  return p.phase === 'completed' ? p.round : p.round - 1;
}

async function fetchClientPlan(server: string, planId: string): Promise<ClientPlan> {
  const res = await fetch(`${server}/v1/plans/${encodeURIComponent(planId)}/client-plan`);
  if (!res.ok) throw await errorFromResponse(res);
  return (await res.json()) as ClientPlan;
}
