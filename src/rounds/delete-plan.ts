/**
 * `DELETE /v1/plans/{id}` (docs/server.md, "Retention"): removes a finished plan's queued jobs, every key of
 * it and its global entries, and drops it from this process's plan cache.
 */
import { AppError } from '../errors';
import { isPlanId } from '../store/ids';
import { roundTag, type RoundStore } from '../store/types';
import type { Jobs, PlanCache } from './contracts';

/** What a delete needs. */
export interface DeletePlanDeps {
  readonly store: RoundStore;
  readonly jobs: Jobs;
  readonly plans: PlanCache;
}

/** What `DELETE /v1/plans/{id}` answers. */
export interface DeletedPlan {
  readonly id: string;
  /** How many Redis keys this call deleted (fewer when it finishes a delete that was interrupted). */
  readonly keys: number;
}

/**
 * Deletes a cancelled, completed or failed plan. 404 PLAN_NOT_FOUND for an unknown id; 409 PLAN_ACTIVE for
 * an active or paused plan (cancel it first), or while its last round attempt is still finishing (a
 * cancelled plan's round that was closed or finalizing). Repeatable: the store deletes the plan's meta hash
 * last, so a delete that was interrupted is finished by the next one.
 */
export async function deletePlan(deps: DeletePlanDeps, id: string): Promise<DeletedPlan> {
  const plan = isPlanId(id) ? await deps.store.getPlan(id) : undefined;
  if (!plan) throw new AppError('PLAN_NOT_FOUND', `no plan ${id}`);
  if (plan.status === 'active' || plan.status === 'paused') {
    throw new AppError('PLAN_ACTIVE', `plan ${id} is ${plan.status}: cancel it first`, [
      {
        path: '/status',
        message: `${plan.status}; only a cancelled, completed or failed plan can be deleted`,
      },
    ]);
  }
  if (plan.phase !== undefined && plan.phase !== 'completed' && plan.phase !== 'failed') {
    const tag = roundTag(plan);
    throw new AppError(
      'PLAN_ACTIVE',
      `plan ${id}: round ${tag} is still ${plan.phase}; try again once it ends`,
      [{ path: '/phase', message: `round ${tag} is ${plan.phase}` }],
    );
  }
  // Jobs first: their ids come from the history, which the delete removes.
  await deps.jobs.forget(await deps.store.attemptsOf(id));
  const result = await deps.store.deletePlan(id);
  deps.plans.forget(id);
  if (result.outcome === 'unknown') throw new AppError('PLAN_NOT_FOUND', `no plan ${id}`);
  if (result.outcome === 'open') throw new AppError('PLAN_ACTIVE', `plan ${id} is ${result.status}`);
  return { id, keys: result.keys };
}
