import { DEFAULT_EVAL_FAULT_RETRIES, type Config } from '../config';
import { faultPoint } from '../faults';
import type { FinalizeResult, PlanEvaluator, PlanRef, RoundMaterials } from '../isolate/contract';
import { evaluateRetrying, failureReason } from '../isolate/fault-class';
import type { Logger } from '../log/logger';
import { scheduleOf } from '../plan/schedule';
import type { CheckedPlan } from '../plan/validate';
import { newPlanPrivacy, overBudget, roundCharge } from '../dp/budget';
import { broadcastWithClip } from '../dp/mechanism';
import { AppError } from '../errors';
import { dpOf } from '../plan/dp-check';
import { newSecAggSetup, secAggStored, type SecAggSetup } from '../secagg/setup';
import { newPlanId } from '../store/ids';
import {
  roundTag,
  type DeadlineKind,
  type PlanSummary,
  type RoundInfo,
  type RoundRef,
  type RoundStore,
} from '../store/types';
import { aggregationViolation } from './aggregation-check';
import { admitPlan } from './plan-admission';
import { unmaskInput } from './secagg-finalize';
import type { Engine, Jobs, LoadedPlan, PlanCache } from './contracts';

/** What the engine needs; all of it is passed in (tests run real ones on a unique prefix). */
export interface RoundEngineDeps {
  readonly store: RoundStore;
  readonly jobs: Jobs;
  readonly plans: PlanCache;
  /** Where plan code runs: disposable isolates on the server (`IsolatePool`), or in-process. */
  readonly evaluator: PlanEvaluator;
  readonly config: EngineConfig;
  readonly log: Logger;
}

/** The engine's options; `evalFaultRetries` defaults to `EVAL_FAULT_RETRIES`'s default. */
type EngineConfig = Pick<Config, 'limits' | 'maxRoundAttempts'> & Partial<Pick<Config, 'evalFaultRetries'>>;

/** Thrown by finalize when the round is not ready yet; the job queue retries it with backoff. */
export class NotReadyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotReadyError';
  }
}

/**
 * The round lifecycle on the server (docs/server.md, "Round phases"): opens round attempts (prepare, the
 * broadcast, the secure-sum parameters, the deadlines), reacts to deadlines, and finalizes closed rounds
 * exactly as the local runner computes a round (merge, min-clients check, report, secure sums, update).
 * Every step is idempotent, so that a job redelivered after a crash, or run twice, does no harm.
 */
export class RoundEngine implements Engine {
  private readonly store: RoundStore;
  private readonly jobs: Jobs;
  private readonly plans: PlanCache;
  private readonly evaluator: PlanEvaluator;
  private readonly config: EngineConfig;
  private readonly log: Logger;

  constructor({ store, jobs, plans, evaluator, config, log }: RoundEngineDeps) {
    this.store = store;
    this.jobs = jobs;
    this.plans = plans;
    this.evaluator = evaluator;
    this.config = config;
    this.log = log;
  }

  async submitPlan(json: unknown, now = Date.now(), population?: string): Promise<PlanSummary> {
    const id = newPlanId();
    const { checked, dp, state, materials, schedule } = await admitPlan(
      json,
      { limits: this.config.limits, evaluator: this.evaluator },
      id,
    );
    const { plan } = checked;
    await this.store.createPlan({
      id,
      json: JSON.stringify(json),
      name: plan.name,
      population: population ?? plan.population ?? plan.client_data.collection,
      rounds: schedule.rounds,
      state,
      now,
      ...(dp ? { dp: newPlanPrivacy(dp) } : {}),
    });
    await this.openWith(
      checked,
      { plan: id, round: 1, attempt: 1 },
      materials,
      now,
      undefined,
      dp?.initialClip,
    );
    this.log.info({ plan: id, name: plan.name, rounds: schedule.rounds }, 'plan submitted; round 1 open');
    const summary = await this.store.getPlan(id);
    if (!summary) throw new Error(`plan ${id} vanished right after it was stored`);
    return summary;
  }

  async onDeadline(ref: RoundRef, kind: DeadlineKind, now = Date.now()): Promise<void> {
    // Decided inside one atomic step on the counts and the stored deadline (src/store/scripts/deadline.ts):
    // an upload that lands while this runs can no longer be overruled by an older read.
    const r = await this.store.deadline(ref, kind, now);
    const at = { plan: ref.plan, round: roundTag(ref) };
    switch (r.outcome) {
      case 'stale':
      case 'paused':
        // A paused plan's clock stands still: resuming moves the deadlines and schedules them anew.
        return;
      case 'not_yet':
        // A resume moved the deadline later than this job was scheduled for: wait for the new one.
        await this.jobs.deadlines(ref, { [kind]: r.at });
        return;
      case 'sharing':
        this.log.info({ ...at, advertised: r.advertised }, 'selection timeout: SecAgg key sharing');
        await this.jobs.deadlines(ref, { sharing: r.at });
        return;
      case 'reporting':
        this.log.info({ ...at, clients: r.assigned }, `${kind} deadline: reporting`);
        return;
      case 'closed':
        this.log.info({ ...at, reported: r.reported }, 'reporting deadline: closed');
        await this.jobs.finalize(ref);
        return;
      case 'failed':
        this.log.warn({ ...at, error: r.error }, 'round attempt failed');
        await this.ensureNext(ref, now);
        return;
      case 'none':
        if (r.phase === 'closed' || r.phase === 'finalizing') {
          // A finalize job may have been lost (an API process died after closing the round with the last
          // upload, or a finalizer mid-way): ask again. Finalize is idempotent, and while uploads still wait
          // it re-queues the lost ones and retries.
          if (kind === 'reporting') await this.jobs.finalize(ref);
        } else if (r.phase === 'completed' || r.phase === 'failed') {
          this.log.debug({ ...at, phase: r.phase }, 'deadline of a finished attempt');
          await this.ensureNext(ref, now);
        }
        return;
    }
  }

  async onStatusChange(plan: string, status: 'active' | 'paused' | 'cancelled'): Promise<void> {
    // The store's status change did the rest atomically: a cancel failed the current attempt (whatever its
    // phase short of completed), a resume moved its deadlines later by the time paused.
    if (status !== 'active') return;
    const summary = await this.store.getPlan(plan);
    if (!summary || summary.round === 0) return;
    const ref: RoundRef = { plan, round: summary.round, attempt: summary.attempt };
    const info = await this.store.getRound(ref);
    if (info?.phase === 'selecting' || info?.phase === 'sharing' || info?.phase === 'reporting')
      await this.scheduleDeadlines(ref, info);
  }

  async finalize(ref: RoundRef, now = Date.now()): Promise<void> {
    const info = await this.store.getRound(ref);
    if (!info) return;
    switch (info.phase) {
      case 'selecting':
      case 'reporting':
        return; // not closed: the deadline or the last upload closes it and asks again
      case 'completed':
      case 'failed':
        await this.ensureNext(ref, now);
        return;
      case 'closed': {
        if (info.accumulated < info.reported) {
          // Uploads accepted but never queued (an API process died in between) would wait forever.
          const pending = await this.store.pendingTasks(ref);
          for (const task of pending) await this.jobs.accumulate(ref, task);
          throw new NotReadyError(
            `round ${ref.plan} ${roundTag(ref)}: ${info.accumulated} of ${info.reported} uploads accumulated ` +
              `(${pending.length} re-queued)`,
          );
        }
        const begun = await this.store.beginFinalize(ref, now);
        if (begun.phase === 'completed' || begun.phase === 'failed') return this.ensureNext(ref, now);
        if (begun.phase !== 'finalizing') {
          throw new NotReadyError(
            `round ${ref.plan} ${roundTag(ref)} is ${begun.phase}, not ready to finalize`,
          );
        }
        break;
      }
      case 'finalizing':
        break; // a finalizer died mid-way: finalizing again computes the same result
    }
    await this.finalizeClosed(ref, info, now);
  }

  /** Merges, checks, reports, updates and stores a round attempt that is `finalizing`. */
  private async finalizeClosed(ref: RoundRef, info: RoundInfo, now: number): Promise<void> {
    const loaded = await this.plans.get(ref.plan);
    if (!loaded) throw new Error(`plan ${ref.plan} is gone`);
    const [partials, state] = await Promise.all([this.store.getPartials(ref), this.store.getState(ref.plan)]);
    if (!state) throw new Error(`plan ${ref.plan} has no server state`);
    const violated = await aggregationViolation(this.store, ref, partials, this.log);
    if (violated !== undefined) return this.failAndReopen(ref, violated, now);
    const unmask = await unmaskInput(this.store, ref, info);
    if (!unmask.ok) return this.failAndReopen(ref, unmask.error, now);
    let result: FinalizeResult;
    try {
      result = await this.evaluator.finalize(planRef(loaded), {
        round: ref.round,
        secureParams: info.secure_params,
        partials,
        state,
        minAggregate: info.min_aggregate,
        ...(unmask.input ? { unmask: unmask.input } : {}),
        ...(info.dp ? { dpClip: info.dp.clip } : {}),
      });
    } catch (e) {
      // A plan error fails the attempt; an isolate fault throws (the job retries, the partials stay) until
      // the attempt has faulted EVAL_FAULT_RETRIES times; anything else throws.
      result = { ok: false, error: await this.failureReason(ref, e) };
    }
    if (!result.ok) {
      await this.failAndReopen(ref, result.error, now);
      return;
    }
    await faultPoint('finalize-before-complete');
    // A dp plan's round n is its n-th completed one (round n opens only after round n-1 completed).
    const dp = dpOf(loaded.checked);
    const privacy = dp ? roundCharge(dp, ref.round, result.dp) : undefined;
    const done = await this.store.complete(ref, result.state, result.output, result.clients, now, privacy);
    if (done.changed)
      this.log.info({ plan: ref.plan, round: roundTag(ref), clients: result.clients }, 'round completed');
    await faultPoint('after-complete-before-open');
    await this.ensureNext(ref, now);
  }

  async onPlanFault(ref: RoundRef, error: string, now = Date.now()): Promise<void> {
    await this.failAndReopen(ref, error, now);
  }

  private async failAndReopen(ref: RoundRef, error: string, now: number): Promise<void> {
    const r = await this.store.fail(ref, error, now);
    if (r.changed) this.log.warn({ plan: ref.plan, round: roundTag(ref), error }, 'round attempt failed');
    await this.ensureNext(ref, now);
  }

  /**
   * Makes sure the plan's next round attempt is open when `ref` is its current attempt and is finished: the
   * same round as attempt a+1 after a failure, round n+1 after a completion (unless it was the last one).
   * Idempotent: opening an attempt that exists does nothing, and its deadline jobs have fixed ids.
   */
  private async ensureNext(ref: RoundRef, now: number): Promise<void> {
    const summary = await this.store.getPlan(ref.plan);
    if (!summary || (summary.status !== 'active' && summary.status !== 'paused')) return;
    if (summary.round !== ref.round || summary.attempt !== ref.attempt) return;
    const info = await this.store.getRound(ref);
    let next: RoundRef;
    if (info?.phase === 'failed' && ref.attempt >= this.config.maxRoundAttempts) {
      // A plan that keeps failing stops, instead of opening attempts without end.
      const reason =
        `round ${ref.round} failed ${ref.attempt} attempts (MAX_ROUND_ATTEMPTS ${this.config.maxRoundAttempts}); ` +
        `the last: ${info.error ?? 'no reason recorded'}`;
      if (await this.store.failPlan(ref.plan, reason))
        this.log.warn({ plan: ref.plan, reason }, 'plan failed');
      return;
    }
    if (info?.phase === 'failed') next = { plan: ref.plan, round: ref.round, attempt: ref.attempt + 1 };
    else if (info?.phase === 'completed' && ref.round < summary.rounds) {
      next = { plan: ref.plan, round: ref.round + 1, attempt: 1 };
      const loaded = await this.plans.get(ref.plan);
      const dp = loaded && dpOf(loaded.checked);
      const over = dp ? overBudget(dp, next.round) : undefined;
      if (over !== undefined) {
        // The round is not run: its release would spend more privacy than the plan may.
        if (await this.store.stopPlan(ref.plan, over))
          this.log.info({ plan: ref.plan, reason: over }, 'plan completed');
        return;
      }
    } else return;
    await this.openAttempt(next, now);
  }

  /**
   * Opens a round attempt from the plan's stored state. When the plan's prepare or secure-sum parameters
   * fail (or crash their isolate EVAL_FAULT_RETRIES times), the attempt is recorded as failed with the
   * reason and the next one is tried, so that the attempts limit stops a plan that can no longer open a round.
   */
  private async openAttempt(ref: RoundRef, now: number): Promise<void> {
    const loaded = await this.plans.get(ref.plan);
    const state = await this.store.getState(ref.plan);
    if (!loaded || !state) throw new Error(`plan ${ref.plan} or its state is gone`);
    // Retried in place: this runs inside the job that finished the attempt before (src/isolate/fault-class.ts).
    const materials = await evaluateRetrying(
      () => this.evaluator.materials(planRef(loaded), state, ref.round),
      () => this.store.countFault(ref),
      this.faultRetries,
    );
    if (!materials.ok) {
      const error = `opening the round: ${materials.reason}`;
      await this.openWith(loaded.checked, ref, undefined, now, error);
      this.log.warn({ plan: ref.plan, round: roundTag(ref), error }, 'round attempt failed');
      await this.ensureNext(ref, now);
      return;
    }
    // A dp plan's next clip is stored with the plan (adaptive clipping moves it each round).
    const dpClip = dpOf(loaded.checked) ? (await this.store.getPlan(ref.plan))?.dp?.clip : undefined;
    const failed = await this.openWith(loaded.checked, ref, materials.value, now, undefined, dpClip);
    if (failed !== undefined) {
      this.log.warn({ plan: ref.plan, round: roundTag(ref), error: failed }, 'round attempt failed');
      await this.ensureNext(ref, now);
      return;
    }
    this.log.info({ plan: ref.plan, round: roundTag(ref) }, 'round attempt open');
  }

  /**
   * Stores a new attempt and schedules its deadlines; with `error`, stores it failed (no broadcast). Answers
   * why it stored the attempt failed (`error`, or secure sums that cannot be masked), else undefined.
   */
  private async openWith(
    checked: CheckedPlan,
    ref: RoundRef,
    m: RoundMaterials | undefined,
    now: number,
    failure?: string,
    /** A dp plan's clip for the attempt. */
    dpClip?: number,
  ): Promise<string | undefined> {
    let error = failure;
    const s = scheduleOf(checked.plan);
    const reporting = now + Math.round(s.reportingDeadlineS * 1000);
    let secure: SecAggSetup | undefined;
    try {
      if (m && error === undefined) secure = newSecAggSetup(checked.plan, m.secureParams, s.selectionTarget);
    } catch (e) {
      // This round's secure-sum parameters cannot be masked: a plan fault, the attempt is stored failed.
      if (!(e instanceof AppError)) throw e;
      error = `opening the round: ${e.message}`;
    }
    const dp = dpOf(checked);
    if (dp && dpClip === undefined && m && error === undefined)
      throw new Error(`plan ${ref.plan}: a round of a dp plan opened without its clip`);
    const broadcast =
      m && dp && dpClip !== undefined
        ? broadcastWithClip(dp, checked.types.C, m.broadcast, dpClip)
        : m?.broadcast;
    await this.store.openRound({
      ref,
      broadcast: broadcast ?? new Uint8Array(0),
      selectionTarget: s.selectionTarget,
      target: s.target,
      minReports: s.minReports,
      minAggregate: s.minAggregate,
      secureParams: m?.secureParams ?? { bitwidth: [], max_input: [], modulus: [] },
      now,
      deadlines: { selection: now + Math.round(s.selectionTimeoutS * 1000), reporting },
      ...(error === undefined ? {} : { error }),
      ...(secure ? { secagg: secAggStored(secure, checked.plan, reporting) } : {}),
      ...(dpClip === undefined ? {} : { dpClip }),
    });
    if (error !== undefined) return error;
    // Scheduled again when the attempt already existed (a crash after openRound): the job ids name the
    // stored deadlines, so nothing is doubled.
    const info = await this.store.getRound(ref);
    if (info) await this.scheduleDeadlines(ref, info);
    return undefined;
  }

  /** Schedules the deadline jobs of an open attempt at its stored deadlines. */
  private async scheduleDeadlines(ref: RoundRef, info: RoundInfo): Promise<void> {
    const { selection_deadline: selection, reporting_deadline: reporting } = info;
    const sharing = info.phase === 'sharing' ? info.sharing_deadline : undefined;
    await this.jobs.deadlines(ref, {
      ...(selection === undefined ? {} : { selection }),
      ...(sharing === undefined ? {} : { sharing }),
      ...(reporting === undefined ? {} : { reporting }),
    });
  }

  /** Why an evaluation error fails the attempt; throws it when it is to be retried (src/isolate/fault-class.ts). */
  private failureReason(ref: RoundRef, e: unknown): Promise<string> {
    return failureReason(e, () => this.store.countFault(ref), this.faultRetries);
  }

  private get faultRetries(): number {
    return this.config.evalFaultRetries ?? DEFAULT_EVAL_FAULT_RETRIES;
  }
}

/** How the engine and the workers name a stored plan to the evaluator. */
export function planRef(loaded: LoadedPlan): PlanRef {
  return { id: loaded.id, document: loaded.checked.plan, checked: loaded.checked };
}
