import type { Config } from '../config';
import { faultPoint } from '../faults';
import {
  isPlanFault,
  type FinalizeResult,
  type PlanEvaluator,
  type PlanRef,
  type RoundMaterials,
} from '../isolate/contract';
import type { Logger } from '../log/logger';
import { checkPlan, type CheckedPlan } from '../plan/validate';
import { newPlanId } from '../store/ids';
import { roundTag, type PlanSummary, type RoundInfo, type RoundRef, type RoundStore } from '../store/types';
import type { Engine, Jobs, LoadedPlan, PlanCache } from './contracts';

/** What the engine needs; all of it is passed in (tests run real ones on a unique prefix). */
export interface RoundEngineDeps {
  readonly store: RoundStore;
  readonly jobs: Jobs;
  readonly plans: PlanCache;
  /** Where plan code runs: disposable isolates on the server (`IsolatePool`), or in-process. */
  readonly evaluator: PlanEvaluator;
  readonly config: Pick<Config, 'limits' | 'maxRoundAttempts'>;
  readonly log: Logger;
}

/** Thrown by finalize when the round is not ready yet; the job queue retries it with backoff. */
export class NotReadyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotReadyError';
  }
}

/** The schedule's numbers with their documented defaults (schemas/plan.schema.json). */
export function scheduleOf(plan: CheckedPlan['plan']) {
  const s = plan.schedule;
  const target = s.target_clients;
  const minReports = s.min_reports ?? target;
  return {
    rounds: s.rounds,
    target,
    // The epsilon keeps float error from adding a client: 10 * 1.3 is 13.000000000000002.
    selectionTarget: Math.max(target, Math.ceil(target * (s.over_selection ?? 1.3) - 1e-9)),
    minReports,
    minAggregate: s.min_clients_in_aggregate ?? minReports,
    selectionTimeoutS: s.selection_timeout_s ?? 60,
    reportingDeadlineS: s.reporting_deadline_s ?? 300,
  };
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
  private readonly config: Pick<Config, 'limits' | 'maxRoundAttempts'>;
  private readonly log: Logger;

  constructor({ store, jobs, plans, evaluator, config, log }: RoundEngineDeps) {
    this.store = store;
    this.jobs = jobs;
    this.plans = plans;
    this.evaluator = evaluator;
    this.config = config;
    this.log = log;
  }

  async submitPlan(json: unknown, now = Date.now()): Promise<PlanSummary> {
    const checked = checkPlan(json, this.config.limits);
    const { plan } = checked;
    const id = newPlanId();
    const ref: PlanRef = { id, document: json, checked };
    // Everything round 1 needs is computed (in an isolate) before the plan is stored, so that a plan whose
    // initialize, prepare or secure-sum parameters fail is rejected rather than stored broken.
    const state = await this.evaluator.initialize(ref);
    const materials = await this.evaluator.materials(ref, state, 1);
    const schedule = scheduleOf(plan);
    await this.store.createPlan({
      id,
      json: JSON.stringify(json),
      name: plan.name,
      population: plan.population ?? plan.client_data.collection,
      rounds: schedule.rounds,
      state,
      now,
    });
    await this.openWith(checked, { plan: id, round: 1, attempt: 1 }, materials, now);
    this.log.info({ plan: id, name: plan.name, rounds: schedule.rounds }, 'plan submitted; round 1 open');
    const summary = await this.store.getPlan(id);
    if (!summary) throw new Error(`plan ${id} vanished right after it was stored`);
    return summary;
  }

  async onDeadline(ref: RoundRef, kind: 'selection' | 'reporting', now = Date.now()): Promise<void> {
    const info = await this.currentRound(ref);
    if (!info) return;
    // A paused plan's clock stops: resuming schedules the attempt's deadlines afresh (onStatusChange).
    if (
      (await this.store.getPlan(ref.plan))?.status === 'paused' &&
      (info.phase === 'selecting' || info.phase === 'reporting')
    ) {
      return;
    }
    const tag = `${ref.plan} ${roundTag(ref)}`;
    switch (info.phase) {
      case 'selecting':
        if (kind === 'selection') {
          if (info.assigned >= info.min_reports) {
            await this.store.toReporting(ref, now);
            this.log.info(
              { plan: ref.plan, round: roundTag(ref), assigned: info.assigned },
              'selection timeout: reporting',
            );
          } else {
            await this.failAndReopen(
              ref,
              `selection timeout with ${info.assigned} clients assigned, fewer than min_reports (${info.min_reports})`,
              now,
            );
          }
          return;
        }
        return this.reportingDeadline(ref, info, now);
      case 'reporting':
        if (kind === 'reporting') return this.reportingDeadline(ref, info, now);
        return;
      case 'closed':
      case 'finalizing':
        // A finalize job may have been lost (an API process died after closing the round with the last
        // upload, or a finalizer mid-way): ask again. Finalize is idempotent, and while uploads still wait it
        // re-queues the lost ones and retries.
        if (kind === 'reporting') await this.jobs.finalize(ref);
        return;
      case 'completed':
      case 'failed':
        this.log.debug({ round: tag, phase: info.phase }, 'deadline of a finished attempt');
        await this.ensureNext(ref, now);
        return;
    }
  }

  async onStatusChange(
    plan: string,
    status: 'active' | 'paused' | 'cancelled',
    now = Date.now(),
  ): Promise<void> {
    const summary = await this.store.getPlan(plan);
    if (!summary || summary.round === 0) return;
    const ref: RoundRef = { plan, round: summary.round, attempt: summary.attempt };
    const info = await this.store.getRound(ref);
    const open = info?.phase === 'selecting' || info?.phase === 'reporting';
    if (status === 'cancelled' && open) {
      // Nothing of a cancelled plan's open round is released; its uploads are late from now on.
      await this.store.fail(ref, 'the plan was cancelled', now);
    } else if (status === 'active' && open) {
      const loaded = await this.plans.get(plan);
      if (!loaded) return;
      const s = scheduleOf(loaded.checked.plan);
      await this.jobs.deadlines(ref, now, s.selectionTimeoutS, s.reportingDeadlineS);
    }
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
        const begun = await this.store.beginFinalize(ref);
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
    let result: FinalizeResult;
    try {
      result = await this.evaluator.finalize(planRef(loaded), {
        round: ref.round,
        secureParams: info.secure_params,
        partials,
        state,
        minAggregate: info.min_aggregate,
      });
    } catch (e) {
      // A crash, abort or timeout of the plan's code fails the attempt; no isolate at all is retried.
      if (!isPlanFault(e)) throw e;
      result = { ok: false, error: e.message.split('\n')[0] ?? e.code };
    }
    if (!result.ok) {
      await this.failAndReopen(ref, result.error, now);
      return;
    }
    await faultPoint('finalize-before-complete');
    const done = await this.store.complete(ref, result.state, result.output, result.clients, now);
    if (done.changed)
      this.log.info({ plan: ref.plan, round: roundTag(ref), clients: result.clients }, 'round completed');
    await faultPoint('after-complete-before-open');
    await this.ensureNext(ref, now);
  }

  async onPlanFault(ref: RoundRef, error: string, now = Date.now()): Promise<void> {
    await this.failAndReopen(ref, error, now);
  }

  private async reportingDeadline(ref: RoundRef, info: RoundInfo, now: number): Promise<void> {
    if (info.reported >= info.min_reports) {
      await this.store.close(ref, now);
      this.log.info(
        { plan: ref.plan, round: roundTag(ref), reported: info.reported },
        'reporting deadline: closed',
      );
      await this.jobs.finalize(ref);
    } else {
      await this.failAndReopen(
        ref,
        `reporting deadline with ${info.reported} reports, fewer than min_reports (${info.min_reports})`,
        now,
      );
    }
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
    else if (info?.phase === 'completed' && ref.round < summary.rounds)
      next = { plan: ref.plan, round: ref.round + 1, attempt: 1 };
    else return;
    await this.openAttempt(next, now);
  }

  /**
   * Opens a round attempt from the plan's stored state. When the plan's prepare or secure-sum parameters
   * fail (or crash their isolate), the attempt is recorded as failed with the reason and the next one is
   * tried, so that the attempts limit stops a plan that can no longer open a round.
   */
  private async openAttempt(ref: RoundRef, now: number): Promise<void> {
    const loaded = await this.plans.get(ref.plan);
    const state = await this.store.getState(ref.plan);
    if (!loaded || !state) throw new Error(`plan ${ref.plan} or its state is gone`);
    let materials: RoundMaterials;
    try {
      materials = await this.evaluator.materials(planRef(loaded), state, ref.round);
    } catch (e) {
      if (!isPlanFault(e)) throw e;
      const error = `opening the round: ${e.message.split('\n')[0]}`;
      await this.openWith(loaded.checked, ref, undefined, now, error);
      this.log.warn({ plan: ref.plan, round: roundTag(ref), error }, 'round attempt failed');
      await this.ensureNext(ref, now);
      return;
    }
    await this.openWith(loaded.checked, ref, materials, now);
    this.log.info({ plan: ref.plan, round: roundTag(ref) }, 'round attempt open');
  }

  /** Stores a new attempt and schedules its deadlines; with `error`, stores it failed (no broadcast). */
  private async openWith(
    checked: CheckedPlan,
    ref: RoundRef,
    m: RoundMaterials | undefined,
    now: number,
    error?: string,
  ): Promise<void> {
    const s = scheduleOf(checked.plan);
    await this.store.openRound({
      ref,
      broadcast: m?.broadcast ?? new Uint8Array(0),
      selectionTarget: s.selectionTarget,
      target: s.target,
      minReports: s.minReports,
      minAggregate: s.minAggregate,
      secureParams: m?.secureParams ?? { bitwidth: [], max_input: [], modulus: [] },
      now,
      ...(error === undefined ? {} : { error }),
    });
    if (error !== undefined) return;
    // Scheduled again when the attempt already existed (a crash after openRound): the ids are fixed.
    const info = await this.store.getRound(ref);
    await this.jobs.deadlines(ref, info?.opened_at ?? now, s.selectionTimeoutS, s.reportingDeadlineS);
  }

  /** The round attempt, if it is still the plan's current one. */
  private async currentRound(ref: RoundRef): Promise<RoundInfo | undefined> {
    const [summary, info] = await Promise.all([this.store.getPlan(ref.plan), this.store.getRound(ref)]);
    if (!summary || !info) return undefined;
    if (summary.round !== ref.round || summary.attempt !== ref.attempt) return undefined;
    if (summary.status === 'cancelled') return undefined;
    return info;
  }
}

/** How the engine and the workers name a stored plan to the evaluator. */
export function planRef(loaded: LoadedPlan): PlanRef {
  return { id: loaded.id, document: loaded.checked.plan, checked: loaded.checked };
}
