import type { Plan } from '../generated/plan';

/** The schedule's numbers with their documented defaults (schemas/plan.schema.json). */
export function scheduleOf(plan: Plan) {
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
