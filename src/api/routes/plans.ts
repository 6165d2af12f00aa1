import { Router } from 'express';
import { AppError } from '../../errors';
import { isPlanId } from '../../store/ids';
import { deletePlan } from '../../rounds/delete-plan';
import type { PlanSummary, RoundInfo, RoundStore } from '../../store/types';
import type { RouteDeps } from '../deps';
import { jsonBody } from '../middleware/json-body';
import { operatorAuth } from '../middleware/operator-auth';

/** The operator transitions and the status each one asks for. */
const TRANSITIONS = { pause: 'paused', resume: 'active', cancel: 'cancelled' } as const;

/**
 * Operator endpoints (Bearer OPERATOR_TOKEN): submit and list plans, a plan's summary, rounds and server
 * state, the pause / resume / cancel transitions, and deleting a finished plan.
 */
export function planRoutes(deps: RouteDeps): Router {
  const { store, engine, config, jobs, plans } = deps;
  const router = Router();
  const auth = operatorAuth({ token: config.operatorToken });

  router.post(
    '/v1/plans',
    auth,
    // A plan over MAX_PLAN_BYTES is a plan limit like any other (400 PLAN_LIMIT_EXCEEDED), not a 413.
    jsonBody({ limit: config.maxPlanBytes, tooLarge: 'PLAN_LIMIT_EXCEEDED' }),
    async (req, res) => {
      const summary = await engine.submitPlan(req.body, deps.now());
      res.status(201).location(`/v1/plans/${summary.id}`).json(summary);
    },
  );

  router.get('/v1/plans', auth, async (_req, res) => {
    res.json({ plans: await store.listPlans() });
  });

  router.get('/v1/plans/:id', auth, async (req, res) => {
    res.json(await mustGetPlan(store, req.params.id as string));
  });

  router.delete('/v1/plans/:id', auth, async (req, res) => {
    res.json(await deletePlan({ store, jobs, plans }, req.params.id as string));
  });

  router.get('/v1/plans/:id/rounds', auth, async (req, res) => {
    const plan = await mustGetPlan(store, req.params.id as string);
    const rounds = await store.listRounds(plan.id);
    res.json({ rounds: rounds.map(roundView) });
  });

  router.get('/v1/plans/:id/state', auth, async (req, res) => {
    const plan = await mustGetPlan(store, req.params.id as string);
    const state = await store.getState(plan.id);
    if (!state) throw new AppError('RESOURCE_NOT_FOUND', `plan ${plan.id} has no server state`);
    res
      .status(200)
      .type('application/octet-stream')
      .set('Cache-Control', 'no-store')
      .set('Content-Disposition', `attachment; filename="${plan.id}-state.safetensors"`)
      .send(Buffer.from(state.buffer, state.byteOffset, state.byteLength));
  });

  for (const [action, status] of Object.entries(TRANSITIONS)) {
    router.post(`/v1/plans/:id/${action}`, auth, async (req, res) => {
      const plan = await mustGetPlan(store, req.params.id as string);
      const now = deps.now();
      const changed = await store.setStatus(plan.id, status, now);
      if (!changed) {
        throw new AppError('PLAN_STATE_CONFLICT', `cannot ${action} plan ${plan.id}: it is ${plan.status}`, [
          { path: '/status', message: `${plan.status} -> ${status} is not allowed` },
        ]);
      }
      await engine.onStatusChange(plan.id, status);
      res.json((await store.getPlan(plan.id)) ?? changed);
    });
  }

  return router;
}

/** The plan's summary, or 404 PLAN_NOT_FOUND (also for ids of the wrong shape, which never reach Redis). */
export async function mustGetPlan(store: RoundStore, id: string): Promise<PlanSummary> {
  const plan = isPlanId(id) ? await store.getPlan(id) : undefined;
  if (!plan) throw new AppError('PLAN_NOT_FOUND', `no plan ${id}`);
  return plan;
}

/** What the operator sees of a round attempt: counts, times and the released output; nothing per client. */
function roundView(r: RoundInfo): Record<string, unknown> {
  return {
    round: r.round,
    attempt: r.attempt,
    phase: r.phase,
    selection_target: r.selection_target,
    target: r.target,
    min_reports: r.min_reports,
    min_aggregate: r.min_aggregate,
    assigned: r.assigned,
    reported: r.reported,
    rejected: r.rejected,
    late: r.late,
    accumulated: r.accumulated,
    aggregated_clients: r.aggregated_clients,
    output: r.output ?? null,
    error: r.error ?? null,
    opened_at: r.opened_at,
    reporting_at: r.reporting_at ?? null,
    closed_at: r.closed_at ?? null,
    finished_at: r.finished_at ?? null,
    ...(r.selection_deadline === undefined ? {} : { selection_deadline: r.selection_deadline }),
    ...(r.reporting_deadline === undefined ? {} : { reporting_deadline: r.reporting_deadline }),
    ...(r.dp === undefined ? {} : { dp: r.dp }),
    ...(r.secure_aggregation === undefined
      ? {}
      : {
          secure_aggregation: r.secure_aggregation,
          ...(r.sharing_at === undefined ? {} : { sharing_at: r.sharing_at }),
          ...(r.sharing_deadline === undefined ? {} : { sharing_deadline: r.sharing_deadline }),
          ...(r.unmasking_deadline === undefined ? {} : { unmasking_deadline: r.unmasking_deadline }),
        }),
  };
}
