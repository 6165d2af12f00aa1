import { Router } from 'express';
import { AppError } from '../../errors';
import { newPlanId } from '../../store/ids';
import { admitProgram } from '../../stateful/admission';
import { deletePlan } from '../../rounds/delete-plan';
import type { ProgramStore } from '../../stateful/server/program-store';
import type { RouteDeps } from '../deps';
import { jsonBody } from '../middleware/json-body';
import { operatorAuth } from '../middleware/operator-auth';

/**
 * The operator's side of stateful programs (docs/stateful.md), Bearer OPERATOR_TOKEN: submit a program
 * (the checks of `admitProgram`; it then recruits its cohort at check-in), list and read programs, cancel
 * one. The devices' side is src/api/routes/sessions.ts.
 */
export function programRoutes(deps: RouteDeps & { readonly programs: ProgramStore }): Router {
  const { programs, config, store } = deps;
  const router = Router();
  const auth = operatorAuth({ token: config.operatorToken });

  router.post(
    '/v1/programs',
    auth,
    jsonBody({ limit: config.maxPlanBytes, tooLarge: 'PLAN_LIMIT_EXCEEDED' }),
    async (req, res) => {
      const { program } = admitProgram(req.body, config.limits);
      const id = newPlanId();
      const now = deps.now();
      await programs.create({
        id,
        json: JSON.stringify(program),
        name: program.name,
        population: program.population,
        steps: program.steps.length,
        targetClients: program.cohort.target_clients,
        minClients: program.cohort.min_clients,
        joinDeadline: now + program.cohort.join_timeout_s * 1000,
        now,
      });
      deps.log.info(
        { program: id, name: program.name, population: program.population },
        'program submitted; recruiting',
      );
      res
        .status(201)
        .location(`/v1/programs/${id}`)
        .json(await programs.get(id));
    },
  );

  router.get('/v1/programs', auth, async (_req, res) => {
    res.json({ programs: await programs.list() });
  });

  router.get('/v1/programs/:id', auth, async (req, res) => {
    const p = await programs.get(req.params.id as string);
    if (!p) throw new AppError('PROGRAM_NOT_FOUND', `no program ${String(req.params.id)}`);
    const sessions = await programs.sessions(p.id);
    const count = (status: string) => sessions.filter((s) => s.status === status).length;
    res.json({
      ...p,
      sessions: { live: count('live'), failed: count('failed'), left: count('left') },
      aggregations: await programs.aggregations(p.id),
    });
  });

  router.post('/v1/programs/:id/cancel', auth, async (req, res) => {
    const id = req.params.id as string;
    const p = await programs.get(id);
    if (!p) throw new AppError('PROGRAM_NOT_FOUND', `no program ${id}`);
    const from = p.status === 'recruiting' || p.status === 'running' ? p.status : undefined;
    if (
      !from ||
      !(await programs.move(id, from, 'cancelled', {
        error: 'cancelled by the operator',
        ended_at: deps.now(),
      }))
    ) {
      throw new AppError(
        'PLAN_STATE_CONFLICT',
        `program ${id} is ${p.status}: only a recruiting or running program can be cancelled`,
      );
    }
    // Its open aggregation takes no more contributions and releases nothing.
    for (const plan of await programs.aggregations(id)) {
      const s = await store.getPlan(plan);
      if (s && (s.status === 'active' || s.status === 'paused'))
        await store.setStatus(plan, 'cancelled', deps.now());
    }
    deps.log.info({ program: id }, 'program cancelled by the operator');
    res.json(await programs.get(id));
  });

  router.delete('/v1/programs/:id', auth, async (req, res) => {
    const id = req.params.id as string;
    const p = await programs.get(id);
    if (!p) throw new AppError('PROGRAM_NOT_FOUND', `no program ${id}`);
    if (p.status === 'recruiting' || p.status === 'running') {
      throw new AppError('PLAN_ACTIVE', `program ${id} is ${p.status}: cancel it first`, [
        {
          path: '/status',
          message: `${p.status}; only a cancelled, completed or failed program can be deleted`,
        },
      ]);
    }
    // Its aggregations' plans first (each as DELETE /v1/plans/{id} does), so that none outlives the program.
    let keys = 0;
    for (const plan of await programs.aggregations(id)) {
      try {
        keys += (await deletePlan({ store, jobs: deps.jobs, plans: deps.plans }, plan)).keys;
      } catch (e) {
        if (!(e instanceof AppError && e.code === 'PLAN_NOT_FOUND')) throw e;
      }
    }
    keys += await programs.delete(id, p.population);
    deps.log.info({ program: id, keys }, 'program deleted');
    res.json({ id, keys });
  });

  return router;
}
