/**
 * What the operator dashboard (web/dashboard.ts) derives from the operator API's answers: a plan's progress,
 * the latest attempt of each round, and the series it plots over rounds. No DOM here, so that it is tested
 * in Node (test/dashboard-data.test.ts).
 */

import type { ProgramSummary } from '../src/stateful/server/program-store';

/** A plan as `GET /v1/plans` and `GET /v1/plans/{id}` describe it (schemas/openapi.json, PlanSummary). */
export interface PlanView {
  readonly id: string;
  readonly name: string;
  readonly population: string;
  readonly status: 'active' | 'paused' | 'cancelled' | 'completed' | 'failed';
  readonly round: number;
  readonly attempt: number;
  readonly rounds: number;
  readonly created_at: number;
  readonly phase?: string;
  readonly error?: string;
  readonly reason?: string;
}

/** One round attempt as `GET /v1/plans/{id}/rounds` describes it (schemas/openapi.json, RoundInfo). */
export interface RoundView {
  readonly round: number;
  readonly attempt: number;
  readonly phase: string;
  readonly assigned: number;
  readonly reported: number;
  readonly rejected: number;
  readonly late: number;
  readonly aggregated_clients: number;
  readonly output: unknown;
  readonly error: string | null;
  readonly opened_at: number;
  readonly finished_at: number | null;
  readonly dp?: Readonly<Record<string, unknown>>;
}

/** One line of a plot: its name and a value per x (null where that round has none). */
export interface Series {
  readonly label: string;
  readonly values: readonly (number | null)[];
}

/** A plot over rounds: x is the round number. */
export interface Plot {
  readonly key: string;
  readonly title: string;
  readonly rounds: readonly number[];
  readonly series: readonly Series[];
}

/** Statuses from which the operator endpoints allow each transition (src/store: setStatus). */
export const ACTIONS = {
  pause: ['active'],
  resume: ['paused'],
  cancel: ['active', 'paused'],
} as const satisfies Record<string, readonly PlanView['status'][]>;

/**
 * Rounds done of the plan's total. The summary's `round` is the round in progress while the plan runs, and
 * stays at the last round run once it has completed (also when a dp plan stops early).
 */
export function progress(plan: PlanView): { done: number; total: number } {
  const done = plan.status === 'completed' ? plan.round : plan.round - 1;
  return { done: Math.max(0, Math.min(done, plan.rounds)), total: plan.rounds };
}

/** How long an attempt ran, in ms: until it finished, or until `now` while it runs. */
export function durationMs(r: RoundView, now: number): number {
  return Math.max(0, (r.finished_at ?? now) - r.opened_at);
}

/** The last attempt of each round, by round number (the API lists attempts oldest first). */
export function latestAttempts(rounds: readonly RoundView[]): RoundView[] {
  const byRound = new Map<number, RoundView>();
  for (const r of rounds) {
    const seen = byRound.get(r.round);
    if (!seen || r.attempt >= seen.attempt) byRound.set(r.round, r);
  }
  return [...byRound.values()].sort((a, b) => a.round - b.round);
}

/**
 * The numbers in a round's output, by dotted path (`train_loss`, `stats.mean`). Arrays (a histogram's
 * counts, a model's weights) are left out: they are not one value per round.
 */
export function numericFields(value: unknown, prefix = ''): Map<string, number> {
  const out = new Map<string, number>();
  if (typeof value === 'number' && Number.isFinite(value)) {
    out.set(prefix || 'value', value);
  } else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      for (const [path, n] of numericFields(v, prefix ? `${prefix}.${k}` : k)) out.set(path, n);
    }
  }
  return out;
}

/**
 * The plots of a plan's rounds: one per numeric field of the released output (each on its own scale: a
 * loss and an example count do not share an axis), the participation counts, and the round durations.
 * Output and durations come from completed attempts only; participation from the latest attempt of every
 * round, running or not.
 */
export function plotsOf(rounds: readonly RoundView[]): Plot[] {
  const latest = latestAttempts(rounds);
  const completed = latest.filter((r) => r.phase === 'completed');
  const x = completed.map((r) => r.round);
  const fields = completed.map((r) => {
    const all = numericFields(r.output);
    for (const [k, v] of numericFields(r.dp ?? {}, 'dp')) all.set(k, v);
    return all;
  });
  const names = [...new Set(fields.flatMap((f) => [...f.keys()]))];
  const plots: Plot[] = names.map((name) => ({
    key: `output:${name}`,
    title: name,
    rounds: x,
    series: [{ label: name, values: fields.map((f) => f.get(name) ?? null) }],
  }));
  const counts = ['assigned', 'reported', 'aggregated_clients', 'rejected', 'late'] as const;
  plots.push({
    key: 'participation',
    title: 'participation (clients)',
    rounds: latest.map((r) => r.round),
    series: counts.map((c) => ({ label: c, values: latest.map((r) => r[c]) })),
  });
  plots.push({
    key: 'duration',
    title: 'round duration (s)',
    rounds: x,
    series: [
      { label: 'duration (s)', values: completed.map((r) => durationMs(r, r.finished_at ?? 0) / 1000) },
    ],
  });
  return plots;
}

/**
 * A stateful program as `GET /v1/programs` and `GET /v1/programs/{id}` describe it (docs/stateful.md): the
 * store's summary (a type only; nothing of the server is bundled into the page).
 */
export type ProgramView = ProgramSummary & {
  /** `GET /v1/programs/{id}` only: its sessions by how they stand, and its aggregations' plans. */
  readonly sessions?: { readonly live: number; readonly failed: number; readonly left: number };
  readonly aggregations?: readonly string[];
};

/** Statuses from which the operator endpoints allow each action on a program (src/api/routes/programs.ts). */
export const PROGRAM_ACTIONS = {
  cancel: ['recruiting', 'running'],
  delete: ['completed', 'failed', 'cancelled'],
} as const satisfies Record<string, readonly ProgramView['status'][]>;

/** One line saying where a program stands. */
export function programLine(p: ProgramView): string {
  const where =
    p.status === 'recruiting'
      ? `recruiting: ${p.live} of ${p.target_clients} devices joined (at least ${p.min_clients})`
      : `${p.status}: step ${Math.min(p.step, p.steps)} of ${p.steps}; ${p.live} of ${p.cohort} devices live`;
  const sessions = p.sessions ? `; sessions failed ${p.sessions.failed}, left ${p.sessions.left}` : '';
  const error = p.error ? `. ${p.error}${p.error_step !== undefined ? ` (step ${p.error_step})` : ''}` : '';
  return `${where}${sessions}; population ${p.population}${error}`;
}
