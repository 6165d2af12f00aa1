/**
 * Turns the string hashes Redis returns into the typed records of `types.ts`. Malformed stored data is a
 * bug (only the store writes these keys), so it throws instead of guessing.
 */
import type { Phase, PlanPrivacy, PlanStatus, PlanSummary, RoundInfo } from './types';

const PHASES: ReadonlySet<string> = new Set<Phase>([
  'selecting',
  'sharing',
  'reporting',
  'closed',
  'finalizing',
  'completed',
  'failed',
]);
const STATUSES: ReadonlySet<string> = new Set<PlanStatus>([
  'active',
  'paused',
  'cancelled',
  'completed',
  'failed',
]);

/** Whether a string is a phase (scripts return phases as strings). */
export function isPhase(s: unknown): s is Phase {
  return typeof s === 'string' && PHASES.has(s);
}

function num(hash: Record<string, string>, field: string, where: string): number {
  const n = Number(hash[field]);
  if (hash[field] === undefined || !Number.isFinite(n)) {
    throw new Error(`${where}: field "${field}" is not a number: ${String(hash[field])}`);
  }
  return n;
}

/** An epsilon: a number, or Infinity for a plan that adds no noise (stored as "Infinity"). */
function epsilon(hash: Record<string, string>, field: string, where: string): number {
  return hash[field] === 'Infinity' ? Infinity : num(hash, field, where);
}

function str(hash: Record<string, string>, field: string, where: string): string {
  const v = hash[field];
  if (v === undefined) throw new Error(`${where}: field "${field}" is missing`);
  return v;
}

function optNum(hash: Record<string, string>, field: string, where: string): number | undefined {
  return hash[field] === undefined ? undefined : num(hash, field, where);
}

/** A round attempt's hash as `RoundInfo`; undefined for an empty hash (no such attempt). */
export function parseRound(
  hash: Record<string, string>,
  round: number,
  attempt: number,
): RoundInfo | undefined {
  if (Object.keys(hash).length === 0) return undefined;
  const where = `round ${round}.${attempt}`;
  const phase = hash.phase;
  if (!isPhase(phase)) throw new Error(`${where}: unknown phase ${String(phase)}`);
  // Absent optional fields are left out rather than set to undefined, so that JSON answers stay lean.
  return dropUndefined<RoundInfo>({
    round,
    attempt,
    phase,
    selection_target: num(hash, 'selection_target', where),
    target: num(hash, 'target', where),
    min_reports: num(hash, 'min_reports', where),
    min_aggregate: num(hash, 'min_aggregate', where),
    assigned: num(hash, 'assigned', where),
    reported: num(hash, 'reported', where),
    rejected: num(hash, 'rejected', where),
    late: num(hash, 'late', where),
    accumulated: num(hash, 'accumulated', where),
    aggregated_clients: num(hash, 'aggregated_clients', where),
    opened_at: num(hash, 'opened_at', where),
    reporting_at: optNum(hash, 'reporting_at', where),
    closed_at: optNum(hash, 'closed_at', where),
    finished_at: optNum(hash, 'finished_at', where),
    selection_deadline: optNum(hash, 'selection_deadline', where),
    reporting_deadline: optNum(hash, 'reporting_deadline', where),
    sharing_at: optNum(hash, 'sharing_at', where),
    sharing_deadline: optNum(hash, 'sharing_deadline', where),
    unmasking_deadline: optNum(hash, 'unmasking_deadline', where),
    secure_aggregation:
      hash.secagg === undefined
        ? undefined
        : {
            protocol: (JSON.parse(hash.secagg) as { protocol: 'secagg+' | 'secagg' }).protocol,
            advertised: num(hash, 'advertised', where),
            shared: num(hash, 'shared', where),
            unmasked: num(hash, 'unmasked', where),
          },
    dp:
      hash.dp_clip === undefined
        ? undefined
        : dropUndefined({
            clip: num(hash, 'dp_clip', where),
            epsilon: hash.dp_epsilon === undefined ? undefined : epsilon(hash, 'dp_epsilon', where),
            next_clip: optNum(hash, 'dp_next_clip', where),
            unclipped_fraction: optNum(hash, 'dp_unclipped', where),
          }),
    output: hash.output === undefined ? undefined : (JSON.parse(hash.output) as unknown),
    error: hash.error,
    secure_params: JSON.parse(str(hash, 'secure_params', where)) as RoundInfo['secure_params'],
  });
}

/** A plan's meta hash (and its current attempt's phase) as `PlanSummary`; undefined for an empty hash. */
export function parsePlan(
  id: string,
  meta: Record<string, string>,
  phase?: string | null,
): PlanSummary | undefined {
  if (Object.keys(meta).length === 0) return undefined;
  const where = `plan ${id}`;
  const status = meta.status;
  if (status === undefined || !STATUSES.has(status))
    throw new Error(`${where}: unknown status ${String(status)}`);
  const summary: PlanSummary = {
    id,
    name: meta.name ?? '',
    population: meta.population ?? '',
    status: status as PlanStatus,
    round: num(meta, 'round', where),
    attempt: num(meta, 'attempt', where),
    rounds: num(meta, 'rounds', where),
    created_at: num(meta, 'created_at', where),
    ...(meta.error === undefined ? {} : { error: meta.error }),
    ...(meta.reason === undefined ? {} : { reason: meta.reason }),
    ...(meta.dp === undefined
      ? {}
      : {
          dp: {
            ...(JSON.parse(meta.dp) as Omit<PlanPrivacy, 'epsilon' | 'rounds' | 'clip'>),
            epsilon: epsilon(meta, 'dp_epsilon', where),
            rounds: num(meta, 'dp_rounds', where),
            clip: num(meta, 'dp_clip', where),
          },
        }),
  };
  return isPhase(phase) ? { ...summary, phase } : summary;
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
