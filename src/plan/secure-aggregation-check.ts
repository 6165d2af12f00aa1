import { tensorLeaves, type TffType } from '../compute/types';
import { AppError, type ErrorDetail } from '../errors';
import type { Plan, SecureAggregation } from '../generated/plan';
import { scheduleOf } from './schedule';
import { completeGraph, secAggParameters } from '../secagg/params';

const PATH = '/schedule/secure_aggregation';

/**
 * Checks `schedule.secure_aggregation` against the plan's secure sums (V1..V3 of work): a plan with secure
 * sums must say how they are aggregated (masked with SecAgg, or `none`: in the clear), so that nobody runs
 * plain sums believing them secure; masking needs secure sums to mask; explicit graph parameters come as a
 * pair, with an odd degree and a threshold no larger than it; and the reporting deadline must leave time to
 * report after selection and the key exchange.
 */
export function secureAggregationErrors(plan: Plan, V: readonly TffType[]): ErrorDetail[] {
  const s = plan.schedule.secure_aggregation;
  const secureSums = V.some((v) => tensorLeaves(v).length > 0);
  const out: ErrorDetail[] = [];
  if (!s) {
    if (secureSums) {
      out.push({
        path: PATH,
        message:
          'work has secure-sum outputs (V1, V2 or V3): say how they are aggregated, {"protocol": "secagg+"} to ' +
          'mask them so the server sees only their sum, or {"protocol": "none"} to sum them in the clear',
      });
    }
    return out;
  }
  if (s.protocol === 'none') return out;
  if (!secureSums) {
    out.push({ path: `${PATH}/protocol`, message: `${s.protocol} masks secure sums, and work has none` });
  }
  if ((s.degree === undefined) !== (s.threshold === undefined)) {
    out.push({
      path: PATH,
      message: 'give degree and threshold together, or neither (then the rates decide)',
    });
  }
  if (s.degree !== undefined && s.degree % 2 === 0) {
    out.push({
      path: `${PATH}/degree`,
      message: `degree ${s.degree} is even; a neighbourhood is the client and as many neighbours on each side`,
    });
  }
  if (s.degree !== undefined && s.threshold !== undefined && s.threshold > s.degree) {
    out.push({
      path: `${PATH}/threshold`,
      message: `threshold ${s.threshold} is more than degree ${s.degree}`,
    });
  }
  out.push(...graphErrors(plan, s));
  const selection = plan.schedule.selection_timeout_s ?? 60;
  const sharing = s.sharing_timeout_s ?? 60;
  const reporting = plan.schedule.reporting_deadline_s ?? 300;
  if (reporting <= selection + sharing) {
    out.push({
      path: '/schedule/reporting_deadline_s',
      message:
        `reporting_deadline_s (${reporting}) leaves no time to report after selection (${selection} s) and ` +
        `the SecAgg key exchange (${sharing} s); both count from the round's opening`,
    });
  }
  return out;
}

/** The largest neighbourhood: Shamir shares over GF(256) have 255 x coordinates. */
const MAX_DEGREE = 255;

/**
 * The graph the largest cohort (the selection target) would get: the finder must find one, with a
 * neighbourhood no larger than MAX_DEGREE (smaller cohorts get smaller ones).
 */
function graphErrors(plan: Plan, s: SecureAggregation): ErrorDetail[] {
  if (s.protocol === 'none' || (s.degree !== undefined && s.threshold !== undefined)) return [];
  const nMax = scheduleOf(plan).selectionTarget;
  const threat = {
    adversarialRate: s.adversarial_rate ?? 0.05,
    dropoutRate: s.dropout_rate ?? 0.33,
    adversaryClass: s.adversary ?? 'curious',
  } as const;
  let degree: number;
  try {
    degree = (s.protocol === 'secagg' ? completeGraph(nMax, threat) : secAggParameters(nMax, threat)).degree;
  } catch (e) {
    if (!(e instanceof AppError)) throw e;
    return [{ path: PATH, message: e.message }];
  }
  if (degree <= MAX_DEGREE) return [];
  return [
    {
      path: PATH,
      message:
        `a cohort of ${nMax} (the selection target) needs neighbourhoods of ${degree} clients, more than the ` +
        `${MAX_DEGREE} Shamir sharing allows; lower dropout_rate or adversarial_rate, use protocol secagg+ ` +
        'rather than secagg, or give degree and threshold',
    },
  ];
}
