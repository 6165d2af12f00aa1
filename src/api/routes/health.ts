import { Router } from 'express';
import { AppError } from '../../errors';
import { RateLimitedLog } from '../../log/rate-limited';
import type { RouteDeps } from '../deps';
import type { PlanSummary } from '../../store/types';
import { loggableError } from '../loggable-error';

/** How long `/readyz` waits for the store before answering not ready. */
const READY_TIMEOUT_MS = 2000;
/** How long `/readyz` waits for a plan isolate to start (loading TensorFlow.js takes a moment). */
const BACKEND_READY_TIMEOUT_MS = 10_000;

/**
 * Probes and metrics, outside `/v1`: `/healthz` (the process answers), `/readyz` (Redis answers, via the
 * `ready` dependency or else a cheap store read, and a plan isolate is up or can start, via
 * `backendReady`), `/metrics` (Prometheus text; counts only).
 */
export function healthRoutes(deps: RouteDeps): Router {
  const router = Router();
  const probe = deps.ready ?? (() => deps.store.getPlan('p0000000000000'));
  // Probes come every few seconds for as long as Redis is away: one line per reason a while is enough.
  const notReady = new RateLimitedLog(deps.log);

  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    try {
      await withTimeout(probe(), READY_TIMEOUT_MS);
    } catch (err) {
      const e = loggableError(err);
      notReady.write('warn', `store:${e.message}`, { err: e }, 'not ready');
      throw new AppError('NOT_READY', 'the store is not reachable');
    }
    if (deps.backendReady) {
      try {
        await withTimeout(deps.backendReady(), BACKEND_READY_TIMEOUT_MS);
      } catch (err) {
        const e = loggableError(err);
        notReady.write('warn', `backend:${e.message}`, { err: e }, 'not ready');
        // Plan code could not run: submissions, round openings and aggregation would all fail.
        throw new AppError(
          'NOT_READY',
          'no plan isolate can be started (the TensorFlow.js backend is unusable)',
        );
      }
    }
    res.set('Cache-Control', 'no-store').json({ status: 'ready' });
  });

  router.get('/metrics', async (_req, res) => {
    const registry = deps.metrics.registry;
    await refreshPrivacy(deps);
    res
      .set('Cache-Control', 'no-store')
      .type(registry.contentType)
      .send(await registry.metrics());
  });

  return router;
}

/**
 * Sets the privacy gauge from the store. With Redis unreachable the gauge is left out (and the process
 * metrics are still served, which is when they are wanted most): a stale epsilon would understate what a
 * plan has spent since.
 */
async function refreshPrivacy(deps: Pick<RouteDeps, 'store' | 'metrics' | 'log'>): Promise<void> {
  const privacy = deps.metrics.privacy;
  privacy.reset();
  let plans: PlanSummary[];
  try {
    plans = await withTimeout(deps.store.listPlans(), READY_TIMEOUT_MS);
  } catch (e) {
    deps.log.debug({ err: e }, 'metrics: the privacy gauge is left out, the store did not answer');
    return;
  }
  for (const p of plans) {
    if (!p.dp) continue;
    privacy.set({ plan: p.id, of: 'spent' }, p.dp.epsilon);
    if (p.dp.target_epsilon !== undefined) privacy.set({ plan: p.id, of: 'target' }, p.dp.target_epsilon);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
