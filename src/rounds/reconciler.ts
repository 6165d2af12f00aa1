import type { Logger } from '../log/logger';
import { roundTag, type DeadlineKind, type RoundInfo, type RoundRef, type RoundStore } from '../store/types';
import type { Engine, Jobs } from './contracts';
import { NotReadyError } from './engine';

/**
 * How long after closing a round the reconciler stops trusting the finalize job and finalizes the round
 * itself: well past a finalize's isolate timeout (ISOLATE_TIMEOUT_MS, 30 s by default) and its retries.
 */
const STUCK_MS = 120_000;

/** What the reconciler needs; all of it passed in. */
export interface ReconcilerDeps {
  readonly store: Pick<RoundStore, 'planPage' | 'getPlan' | 'getRound' | 'sweep' | 'reindex'>;
  readonly engine: Pick<Engine, 'onDeadline' | 'finalize'>;
  readonly jobs: Pick<Jobs, 'finalize'>;
  readonly log: Logger;
  /** Plan ids read per step of the walk (a ZSCAN hint); default 100. */
  readonly pageSize?: number;
}

/** What one run did. */
export interface ReconcileReport {
  /** Plans looked at. */
  readonly plans: number;
  /** Plans whose current attempt was driven (a deadline decided, a finalize queued, a next attempt ensured). */
  readonly driven: number;
  /** Plans whose step threw (logged; the next run tries again). */
  readonly failed: number;
}

/**
 * Drives every active or paused plan's current round attempt forward when the events that should have done
 * it were lost (docs/server.md, "Reconciler"): a process died between two steps, a job used up its
 * attempts, a throw left a round half-way. A worker runs it as the `reconcile` job, every
 * RECONCILE_INTERVAL_MS. Each step is one the engine takes anyway, and each is idempotent, so any number of
 * reconcilers may run at once, beside the deadline and finalize jobs:
 *
 * - `selecting`/`reporting` past a stored deadline (an active plan): the deadline decision, as its job does;
 * - `closed`/`finalizing`: the finalize job is queued again (no-op when it exists; a delayed retry is
 *   promoted), and finalize re-queues lost accumulate jobs; closed for longer than STUCK_MS (a job held
 *   by a process that never settles it), the reconciler finalizes the round itself;
 * - `completed`/`failed` while still the plan's current attempt: the next attempt is opened (or the plan
 *   is failed after MAX_ROUND_ATTEMPTS);
 * - every plan's entries in the global indexes are brought in line with its own keys (`store.reindex`:
 *   they live in other slots of a Redis Cluster, so they change in separate steps that a dying process can
 *   leave half-done);
 * - and, for every plan, the sweep finishes deleting the data of finished attempts that a process dying
 *   after complete or fail left moved aside (docs/server.md, "Retention").
 */
export class Reconciler {
  private readonly pageSize: number;

  constructor(private readonly deps: ReconcilerDeps) {
    this.pageSize = deps.pageSize ?? 100;
  }

  /** Walks the plans index in pages and drives each plan; a plan that fails is logged and skipped. */
  async run(now = Date.now()): Promise<ReconcileReport> {
    const seen = new Set<string>();
    let driven = 0;
    let failed = 0;
    let cursor = '0';
    do {
      const page = await this.deps.store.planPage(cursor, this.pageSize);
      cursor = page.cursor;
      for (const id of page.ids) {
        // ZSCAN may return an id twice; driving it twice would do no harm, only count it twice.
        if (seen.has(id)) continue;
        seen.add(id);
        try {
          const reindexed = await this.deps.store.reindex(id, now);
          if (reindexed !== 'in-line' && reindexed !== 'pending') {
            this.deps.log.info({ plan: id, outcome: reindexed }, 'reconciler: global index repaired');
          }
          if (await this.drive(id, now)) driven++;
        } catch (err) {
          failed++;
          this.deps.log.warn({ err, plan: id }, 'reconciler: could not drive the plan; next run tries again');
        }
      }
    } while (cursor !== '0');
    try {
      await this.deps.store.sweep();
    } catch (err) {
      failed++;
      this.deps.log.warn({ err }, 'reconciler: the sweep failed; next run tries again');
    }
    return { plans: seen.size, driven, failed };
  }

  /** Drives one plan's current attempt; whether anything was asked of the engine or the queue. */
  private async drive(id: string, now: number): Promise<boolean> {
    const { store, engine, jobs, log } = this.deps;
    const plan = await store.getPlan(id);
    if (!plan || (plan.status !== 'active' && plan.status !== 'paused') || plan.round === 0) return false;
    const ref: RoundRef = { plan: id, round: plan.round, attempt: plan.attempt };
    const info = await store.getRound(ref);
    if (!info) return false;
    const tag = { plan: id, round: roundTag(ref), phase: info.phase };
    switch (info.phase) {
      case 'selecting':
      case 'sharing':
      case 'reporting': {
        // A paused plan's clock stands still; the deadline script would say so too.
        if (plan.status !== 'active') return false;
        const due = dueDeadlines(info, now);
        for (const kind of due) {
          log.debug({ ...tag, kind }, 'reconciler: deadline passed');
          await engine.onDeadline(ref, kind, now);
        }
        return due.length > 0;
      }
      case 'closed':
      case 'finalizing':
        log.debug(tag, 'reconciler: finalize queued');
        await jobs.finalize(ref);
        // Queueing does nothing while a job of that id is active, and one held by a process that never
        // settles it would hold the round for good: past STUCK_MS the reconciler finalizes itself
        // (idempotent; at worst it repeats a slow finalizer's work).
        if (info.closed_at !== undefined && now - info.closed_at > STUCK_MS) {
          log.warn(tag, 'reconciler: round closed for long; finalizing it here');
          try {
            await engine.finalize(ref, now);
          } catch (err) {
            if (!(err instanceof NotReadyError)) throw err;
          }
        }
        return true;
      case 'completed':
      case 'failed':
        // Finalize of a finished attempt only makes sure the next one is open.
        log.debug(tag, 'reconciler: ensuring the next attempt');
        await engine.finalize(ref, now);
        return true;
    }
  }
}

/** The deadlines of an open attempt that have passed, in the order they are decided. */
function dueDeadlines(info: RoundInfo, now: number): DeadlineKind[] {
  const due: DeadlineKind[] = [];
  const passed = (at: number | undefined) => at !== undefined && at <= now;
  if (info.phase === 'selecting' && passed(info.selection_deadline)) due.push('selection');
  if (info.phase === 'sharing' && passed(info.sharing_deadline)) due.push('sharing');
  if (passed(info.reporting_deadline)) due.push('reporting');
  return due;
}
