import type { Limits } from '../compute/limits';
import type { ErrorDetail } from '../errors';
import type { Plan } from '../generated/plan';

/** The schedule's documented defaults (schemas/plan.schema.json) for the fields the bounds apply to. */
const DEFAULT_SELECTION_TIMEOUT_S = 60;
const DEFAULT_REPORTING_DEADLINE_S = 300;
const DEFAULT_SECAGG_TIMEOUT_S = 60;

/** Schedule values that contradict each other, whatever the server's configuration. */
export function scheduleErrors(plan: Plan): ErrorDetail[] {
  const s = plan.schedule;
  const out: ErrorDetail[] = [];
  const minReports = s.min_reports ?? s.target_clients;
  if (minReports > s.target_clients) {
    out.push({
      path: '/schedule/min_reports',
      message: `min_reports (${minReports}) is more than target_clients (${s.target_clients})`,
    });
  }
  // min_clients_in_aggregate may exceed min_reports (a round with enough reports can still be too small to
  // release), but not target_clients: then no round could ever be released.
  if ((s.min_clients_in_aggregate ?? minReports) > s.target_clients) {
    out.push({
      path: '/schedule/min_clients_in_aggregate',
      message: `min_clients_in_aggregate (${s.min_clients_in_aggregate}) is more than target_clients (${s.target_clients}), so no round could ever be released`,
    });
  }
  return out;
}

/**
 * Schedule values outside the bounds the server is configured with (`SCHEDULE_*`, README "Configuration"):
 * a selection timeout of 1e-300 s would open and fail attempts as fast as the CPU allows, a deadline of
 * 1e300 s would issue task tokens that never expire. Defaults count as if written, so a server configured
 * with a maximum under 300 s asks plans to set their deadline.
 */
export function scheduleBoundErrors(plan: Plan, limits: Limits): ErrorDetail[] {
  const s = plan.schedule;
  const out: ErrorDetail[] = [];
  const seconds: [string, number | undefined, number][] = [
    ['selection_timeout_s', s.selection_timeout_s, DEFAULT_SELECTION_TIMEOUT_S],
    ['reporting_deadline_s', s.reporting_deadline_s, DEFAULT_REPORTING_DEADLINE_S],
  ];
  const secure = s.secure_aggregation;
  if (secure && secure.protocol !== 'none') {
    seconds.push(
      ['secure_aggregation/sharing_timeout_s', secure.sharing_timeout_s, DEFAULT_SECAGG_TIMEOUT_S],
      ['secure_aggregation/unmasking_timeout_s', secure.unmasking_timeout_s, DEFAULT_SECAGG_TIMEOUT_S],
    );
  }
  for (const [field, given, fallback] of seconds) {
    const v = given ?? fallback;
    const why = secondsBoundError(
      given === undefined ? `${field} (default ${v})` : `${field} ${v}`,
      v,
      limits,
    );
    if (why) out.push({ path: `/schedule/${field}`, message: why });
  }
  if (s.rounds > limits.scheduleMaxRounds) {
    out.push({
      path: '/schedule/rounds',
      message: `rounds ${s.rounds} is more than the maximum of ${limits.scheduleMaxRounds} (SCHEDULE_MAX_ROUNDS)`,
    });
  }
  if (s.target_clients > limits.scheduleMaxTargetClients) {
    out.push({
      path: '/schedule/target_clients',
      message: `target_clients ${s.target_clients} is more than the maximum of ${limits.scheduleMaxTargetClients} (SCHEDULE_MAX_TARGET_CLIENTS)`,
    });
  }
  return out;
}

/** Why a duration `v` (named `what`) is outside SCHEDULE_MIN_SECONDS..SCHEDULE_MAX_SECONDS, or null. */
export function secondsBoundError(what: string, v: number, limits: Limits): string | null {
  if (v < limits.scheduleMinSeconds)
    return `${what} is less than the minimum of ${limits.scheduleMinSeconds} s (SCHEDULE_MIN_SECONDS)`;
  if (v > limits.scheduleMaxSeconds)
    return `${what} is more than the maximum of ${limits.scheduleMaxSeconds} s (SCHEDULE_MAX_SECONDS)`;
  return null;
}
