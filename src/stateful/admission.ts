import type { Limits } from '../compute/limits';
import { checkPlan } from '../plan/validate';
import { aggregationPlan } from './aggregation-plan';
import { checkProgram, type CheckedProgram } from './check';

/**
 * Every check a program passes before the server stores it (`POST /v1/programs`), and that `roundhouse
 * validate` runs too, so that both answer the same errors: `checkProgram` (schema, types, placements, the
 * privacy rule, minimums, bounds, the cost model), then each aggregation's one-round plan built for the
 * largest cohort and checked as any plan is (an aggregate whose report has an unknown dimension is refused
 * here, not mid-program). Throws the AppError the API answers with.
 */
export function admitProgram(json: unknown, limits: Limits): CheckedProgram {
  const checked = checkProgram(json, limits);
  const { program } = checked;
  for (const index of checked.aggregations) {
    const step = program.steps[index]!;
    const deadlineS = (step.op === 'aggregate' && step.deadline_s) || program.cohort.step_timeout_s;
    checkPlan(aggregationPlan(checked, index, { clients: program.cohort.target_clients, deadlineS }), limits);
  }
  return checked;
}
