import { Command } from 'commander';
import type { RoundRow } from '../client/operator';
import type { PlanSummary } from '../store/types';
import { loadOperatorConfig } from './cli-config';
import { operatorApi, withServerOptions } from './operator-client';

/** Left-aligned columns separated by two spaces, with a header row. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

function time(ms: number | undefined): string {
  return ms === undefined || !Number.isFinite(ms) ? '' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** An epsilon as shown: 4 significant digits; JSON answers carry an infinite one (no noise) as null. */
function epsilon(e: number | null): string {
  return e === null || !Number.isFinite(e) ? 'inf' : e.toPrecision(4);
}

/** Round position of a plan, e.g. `2/3` or `2/3 (attempt 2)`. */
function position(p: PlanSummary): string {
  return `${p.round}/${p.rounds}${p.attempt > 1 ? ` (attempt ${p.attempt})` : ''}`;
}

/** The plans table of `roundhouse status`. */
export function formatPlans(plans: readonly PlanSummary[]): string {
  if (plans.length === 0) return 'no plans; submit one with `roundhouse submit plan.json`\n';
  return formatTable(
    ['ID', 'NAME', 'POPULATION', 'STATUS', 'ROUND', 'PHASE', 'CREATED'],
    plans.map((p) => [p.id, p.name, p.population, p.status, position(p), p.phase ?? '', time(p.created_at)]),
  );
}

/** One plan's header and rounds table of `roundhouse status <id>`; outputs longer than `outputWidth` are cut. */
export function formatPlanRounds(plan: PlanSummary, rounds: readonly RoundRow[], outputWidth = 80): string {
  const head =
    `plan ${plan.id}  ${plan.name}  population=${plan.population}  status=${plan.status}  ` +
    `round=${position(plan)}${plan.phase ? `  phase=${plan.phase}` : ''}  created=${time(plan.created_at)}\n` +
    (plan.dp
      ? `privacy: epsilon ${epsilon(plan.dp.epsilon)} of ${plan.dp.target_epsilon ?? 'no target'} spent (delta ${plan.dp.delta}, ` +
        `${plan.dp.accounting}, z ${plan.dp.noise_multiplier}) over ${plan.dp.rounds} rounds; next clip ${plan.dp.clip.toPrecision(4)}\n`
      : '') +
    (plan.reason ? `stopped: ${plan.reason}\n` : '');
  if (rounds.length === 0) return `${head}no rounds yet\n`;
  // Rounds with secure aggregation: the cohort, those that shared keys, those that answered the unmasking.
  const secure = rounds.some((r) => r.secure_aggregation);
  // dp plans: each round's clip and the epsilon spent once it completed.
  const private_ = rounds.some((r) => r.dp);
  const secAgg = (r: RoundRow) =>
    r.secure_aggregation
      ? [`${r.secure_aggregation.advertised}/${r.secure_aggregation.shared}/${r.secure_aggregation.unmasked}`]
      : ['-'];
  const table = formatTable(
    [
      'ROUND',
      'PHASE',
      'ASSIGNED',
      'REPORTED',
      'REJECTED',
      'LATE',
      'AGGREGATED',
      ...(secure ? ['SECAGG COHORT/SHARED/UNMASKED'] : []),
      ...(private_ ? ['CLIP', 'EPSILON'] : []),
      'OUTPUT',
    ],
    rounds.map((r) => [
      `${r.round}.${r.attempt}`,
      r.phase,
      String(r.assigned),
      String(r.reported),
      String(r.rejected),
      String(r.late),
      String(r.aggregated_clients),
      ...(secure ? secAgg(r) : []),
      ...(private_
        ? [r.dp ? r.dp.clip.toPrecision(4) : '-', r.dp?.epsilon === undefined ? '-' : epsilon(r.dp.epsilon)]
        : []),
      r.error
        ? `error: ${clip(r.error, outputWidth)}`
        : r.output === undefined || r.output === null
          ? ''
          : clip(JSON.stringify(r.output), outputWidth),
    ]),
  );
  return `${head}\n${table}`;
}

/**
 * `roundhouse status [plan-id]`: the plans on the server, or one plan's round attempts with their phase,
 * counts and released output.
 */
export function statusCommand(): Command {
  return withServerOptions(
    new Command('status')
      .description("list the server's plans, or one plan's rounds with phase, counts and output")
      .argument('[plan-id]', 'show this plan and its rounds'),
  )
    .option('--json', 'print the server answer as JSON')
    .option('--full', 'print round outputs in full instead of cutting them to a line')
    .action(
      async (
        planId: string | undefined,
        opts: { server?: string; token?: string; json?: boolean; full?: boolean },
      ) => {
        const client = operatorApi(loadOperatorConfig(opts));
        const out = (text: string): void => void process.stdout.write(text);
        if (planId === undefined) {
          const plans = await client.call('GET /v1/plans', (api) => api.plans());
          out(opts.json ? `${JSON.stringify({ plans }, null, 2)}\n` : formatPlans(plans));
          return;
        }
        const [plan, rounds] = await client.call(`GET /v1/plans/${planId}`, (api) =>
          Promise.all([api.plan(planId), api.rounds(planId)]),
        );
        out(
          opts.json
            ? `${JSON.stringify({ plan, rounds }, null, 2)}\n`
            : formatPlanRounds(plan, rounds, opts.full ? Infinity : 80),
        );
      },
    );
}
