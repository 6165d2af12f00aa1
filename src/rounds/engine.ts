import { decodePartial } from '../aggregation/partial';
import { checkSecureSumParams } from '../aggregation/secure-sum';
import { base64ToBytes, decodeBundle, encodeBundle } from '../codec';
import { Interpreter } from '../compute/interpreter';
import { disposeValue, type Value } from '../compute/value';
import type { Config } from '../config';
import { AppError } from '../errors';
import type { Logger } from '../log/logger';
import { checkPlan, type CheckedPlan } from '../plan/validate';
import { newPlanId } from '../store/ids';
import { roundTag, type PlanSummary, type RoundInfo, type RoundRef, type RoundStore } from '../store/types';
import type { Engine, Jobs, PlanCache } from './contracts';
import {
  allSecureParams,
  mergeAll,
  newSecureSums,
  runSlot,
  SECURE_KINDS,
  updateStep,
  type SecureParams,
} from './form-steps';

/** What the engine needs; all of it is passed in (tests run real ones on a unique prefix). */
export interface RoundEngineDeps {
  readonly store: RoundStore;
  readonly jobs: Jobs;
  readonly plans: PlanCache;
  readonly config: Pick<Config, 'limits'>;
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

/** What opening a round attempt computes from the server state. */
interface RoundMaterials {
  readonly broadcast: Uint8Array;
  readonly secureParams: SecureParams;
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
  private readonly config: Pick<Config, 'limits'>;
  private readonly log: Logger;

  constructor({ store, jobs, plans, config, log }: RoundEngineDeps) {
    this.store = store;
    this.jobs = jobs;
    this.plans = plans;
    this.config = config;
    this.log = log;
  }

  async submitPlan(json: unknown, now = Date.now()): Promise<PlanSummary> {
    const checked = checkPlan(json, this.config.limits);
    const { plan, types } = checked;
    const interpreter = this.interpreter(checked);
    // Everything round 1 needs is computed before the plan is stored, so that a plan whose initialize,
    // prepare or secure-sum parameters fail is rejected rather than stored broken.
    const S = plan.initialize
      ? interpreter.run(plan.initialize, undefined, { round: 0, label: 'initialize' })
      : decodeBundle(base64ToBytes(plan.initial_state!.data), types.S);
    let state: Uint8Array;
    let materials: RoundMaterials;
    try {
      state = encodeBundle(S, types.S);
      materials = this.materials(interpreter, checked, S, 1);
    } finally {
      disposeValue(S);
    }
    const id = newPlanId();
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
    const { checked } = loaded;
    const { types, plan } = checked;
    const interpreter = this.interpreter(checked);
    const [partials, stateBytes] = await Promise.all([
      this.store.getPartials(ref),
      this.store.getState(ref.plan),
    ]);
    if (!stateBytes) throw new Error(`plan ${ref.plan} has no server state`);

    let result: { state: Uint8Array; output: unknown; clients: number } | { error: string };
    const owned: Value[] = [];
    try {
      const decoded = partials.map((bytes) => decodePartial(bytes, types, info.secure_params));
      const accs = decoded.map((p) => p.acc);
      const merged = mergeAll(interpreter, plan, accs, ref.round);
      owned.push(merged);
      const clients = decoded.reduce((n, p) => n + p.clients, 0);
      if (clients < info.min_aggregate) {
        result = {
          error: `${clients} clients in the aggregate, fewer than min_clients_in_aggregate (${info.min_aggregate})`,
        };
      } else {
        const sums = newSecureSums(checked, info.secure_params);
        for (const p of decoded) p.sums.forEach((sum, k) => sums[k]!.merge(sum));
        const S = decodeBundle(stateBytes, types.S, { requireFinite: false });
        owned.push(S);
        const R = runSlot(interpreter, plan, 'report', ref.round, merged);
        owned.push(R);
        const next = updateStep(interpreter, checked, S, R, sums, ref.round);
        owned.push(next.state);
        result = { state: encodeBundle(next.state, types.S), output: next.output, clients };
      }
    } catch (e) {
      // A plan computation failing on this round's data cannot succeed by retrying: the attempt fails.
      if (!(e instanceof AppError)) throw e;
      result = { error: `finalize: ${e.message.split('\n')[0]}` };
    } finally {
      for (const v of owned) disposeValue(v);
    }

    if ('error' in result) {
      await this.failAndReopen(ref, result.error, now);
      return;
    }
    const done = await this.store.complete(ref, result.state, result.output, result.clients, now);
    if (done.changed)
      this.log.info({ plan: ref.plan, round: roundTag(ref), clients: result.clients }, 'round completed');
    await this.ensureNext(ref, now);
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
    if (info?.phase === 'failed') next = { plan: ref.plan, round: ref.round, attempt: ref.attempt + 1 };
    else if (info?.phase === 'completed' && ref.round < summary.rounds)
      next = { plan: ref.plan, round: ref.round + 1, attempt: 1 };
    else return;
    await this.openAttempt(next, now);
  }

  /** Opens a round attempt from the plan's stored state. */
  private async openAttempt(ref: RoundRef, now: number): Promise<void> {
    const loaded = await this.plans.get(ref.plan);
    const stateBytes = await this.store.getState(ref.plan);
    if (!loaded || !stateBytes) throw new Error(`plan ${ref.plan} or its state is gone`);
    const { checked } = loaded;
    const S = decodeBundle(stateBytes, checked.types.S, { requireFinite: false });
    let materials: RoundMaterials;
    try {
      materials = this.materials(this.interpreter(checked), checked, S, ref.round);
    } finally {
      disposeValue(S);
    }
    await this.openWith(checked, ref, materials, now);
    this.log.info({ plan: ref.plan, round: roundTag(ref) }, 'round attempt open');
  }

  /** C = prepare(S) as a bundle, and the secure-sum parameters (checked), for round `round`. */
  private materials(interpreter: Interpreter, checked: CheckedPlan, S: Value, round: number): RoundMaterials {
    const C = runSlot(interpreter, checked.plan, 'prepare', round, S);
    try {
      const broadcast = encodeBundle(C, checked.types.C);
      const secureParams = allSecureParams(interpreter, checked, round);
      for (const kind of SECURE_KINDS) checkSecureSumParams(kind, secureParams[kind]);
      return { broadcast, secureParams };
    } finally {
      disposeValue(C);
    }
  }

  private async openWith(checked: CheckedPlan, ref: RoundRef, m: RoundMaterials, now: number): Promise<void> {
    const s = scheduleOf(checked.plan);
    await this.store.openRound({
      ref,
      broadcast: m.broadcast,
      selectionTarget: s.selectionTarget,
      target: s.target,
      minReports: s.minReports,
      minAggregate: s.minAggregate,
      secureParams: m.secureParams,
      now,
    });
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

  private interpreter(checked: CheckedPlan): Interpreter {
    return new Interpreter(checked.plan.functions ?? {}, this.config.limits);
  }
}
