import type { Limits } from '../compute/limits';
import { checkFirstRound } from '../dp/budget';
import type { PlanEvaluator, PlanRef, RoundMaterials } from '../isolate/contract';
import { dpOf, type DpSetting } from '../plan/dp-check';
import { scheduleOf } from '../plan/schedule';
import { checkPlan, type CheckedPlan } from '../plan/validate';
import { newSecAggSetup } from '../secagg/setup';

/** What admitting a plan needs: the server's limits and where plan code runs. */
export interface PlanAdmissionDeps {
  readonly limits: Limits;
  readonly evaluator: PlanEvaluator;
}

/** A plan that passed every submit-time check, with what round 1 needs, computed on the way. */
export interface AdmittedPlan {
  readonly checked: CheckedPlan;
  /** The resolved dp setting, undefined when the plan has no dp section. */
  readonly dp: DpSetting | undefined;
  /** The initial server state S (bundle of type S). */
  readonly state: Uint8Array;
  /** Round 1's broadcast and secure-sum parameters. */
  readonly materials: RoundMaterials;
  readonly schedule: ReturnType<typeof scheduleOf>;
}

/**
 * Every check a plan passes before the server stores it (POST /v1/plans), in the order the server runs them:
 * the static `checkPlan` (schema, types, form, bounds), the dp budget of round 1, then `initialize`, `prepare`
 * and the secure-sum parameters evaluated for round 1, and the SecAgg masking moduli. The engine stores what
 * this returns; `roundhouse validate` runs it without storing, so that both answer the same errors.
 * Throws the AppError the API answers with. `id` names the plan to the evaluator (an isolate caches by it).
 */
export async function admitPlan(json: unknown, deps: PlanAdmissionDeps, id: string): Promise<AdmittedPlan> {
  const checked = checkPlan(json, deps.limits);
  const dp = dpOf(checked);
  if (dp) checkFirstRound(dp);
  const ref: PlanRef = { id, document: json, checked };
  // Everything round 1 needs is computed (in an isolate on the server) before the plan is stored, so that a
  // plan whose initialize, prepare or secure-sum parameters fail is rejected rather than stored broken.
  const state = await deps.evaluator.initialize(ref);
  const materials = await deps.evaluator.materials(ref, state, 1);
  const schedule = scheduleOf(checked.plan);
  // A plan whose secure sums cannot be masked (a modulus past 2^52) is refused before it is stored.
  newSecAggSetup(checked.plan, materials.secureParams, schedule.selectionTarget);
  return { checked, dp, state, materials, schedule };
}
