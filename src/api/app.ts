import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express from 'express';
import type { AppDeps, RouteDeps } from './deps';
import { AnonymousVerifier } from './devices/anonymous';
import { createMetrics } from './metrics';
import { clientCors } from './middleware/client-cors';
import { errorHandler, errorResponder } from './middleware/errors';
import { requestObserver } from './middleware/http-metrics';
import { notFound } from './middleware/not-found';
import { requestLogger, routePattern } from './middleware/request-log';
import { mountRawRoutes, withRawRoutes, type RawHooks, type RawRoute } from './raw-routes';
import { openapiRoutes } from './openapi';
import { checkinRoute } from './routes/checkin';
import { healthRoutes } from './routes/health';
import { planRoutes } from './routes/plans';
import { programRoutes } from './routes/programs';
import { sessionRoutes } from './routes/sessions';
import { HeldPolls, HELD_POLLS_PER_HOLDER } from './held-polls';
import { resourceRoutes } from './routes/resources';
import { secAggRoutes } from './routes/secagg';
import { uploadRoutes } from './routes/uploads';
import { webRoutes } from './routes/web';

export type { AppDeps } from './deps';

/**
 * Builds the HTTP API of docs/server.md. Stateless: every fact lives in the store, so any number of these
 * apps may serve the same Redis. Each area's router declares full paths (`/v1/...`) and is mounted at the
 * root, so that the route list can be checked against the OpenAPI document. Body parsing is per route:
 * each route decides its limit and content type.
 */
export function createApp(deps: AppDeps): express.Express {
  return build(deps).app;
}

/**
 * The server's request listener: the app, with the routes that answer in bursts (a cohort's long polls)
 * served ahead of it on Node's own objects (src/api/raw-routes.ts).
 */
export function createRequestListener(deps: AppDeps): RequestListener {
  const { app, raw, hooks } = build(deps);
  return withRawRoutes(app, raw, hooks);
}

function build(deps: AppDeps): { app: express.Express; raw: RawRoute[]; hooks: RawHooks } {
  const metrics = deps.metrics ?? createMetrics();
  const routeDeps: RouteDeps = {
    ...deps,
    devices: deps.devices ?? new AnonymousVerifier(),
    metrics,
    now: deps.now ?? Date.now,
    heldPolls: new HeldPolls(HELD_POLLS_PER_HOLDER, deps.config.maxHeldPolls, {
      held: (size) => metrics.heldPolls.set(size),
      unheld: (bound) => metrics.unheldPolls.inc({ bound }),
    }),
  };
  const app = express();
  app.disable('x-powered-by');
  // Resources set their own strong ETags; other answers are not worth hashing.
  app.set('etag', false);
  app.set('query parser', false);

  const logRequest = requestLogger(deps.log);
  const observeRequest = requestObserver(routeDeps.metrics);
  // A log line and metrics per request, under the route pattern read once it has finished.
  const observe = (req: IncomingMessage, res: ServerResponse, route: () => string): void => {
    logRequest(req, res, route);
    observeRequest(req, res, route);
  };
  const cors = clientCors({ origins: deps.config.corsOrigins });
  const fail = errorResponder({ log: deps.log });
  app.use((req, res, next) => {
    observe(req, res, () => routePattern(req));
    next();
  });
  app.use(cors);
  const raw: RawRoute[] = [];

  // The clients' hot paths first: express tries every route of every router in order, and a check-in that
  // came last paid for each route ahead of it (measured: a tenth of its CPU in the router).
  const checkin = checkinRoute(routeDeps);
  raw.push(checkin);
  mountRawRoutes(app, [checkin]);
  app.use(uploadRoutes(routeDeps));
  app.use(resourceRoutes(routeDeps));
  app.use(secAggRoutes(routeDeps));
  app.use(healthRoutes(routeDeps));
  app.use(openapiRoutes());
  app.use(planRoutes(routeDeps));
  if (deps.programs) {
    app.use(programRoutes({ ...routeDeps, programs: deps.programs }));
    const sessions = sessionRoutes({ ...routeDeps, programs: deps.programs });
    app.use(sessions.router);
    raw.push(sessions.longPoll);
    mountRawRoutes(app, [sessions.longPoll]);
  }
  app.use(webRoutes());

  app.use(notFound());
  app.use(errorHandler({ log: deps.log, respond: fail }));
  const hooks: RawHooks = { observe: (req, res, route) => observe(req, res, () => route), cors, fail };
  return { app, raw, hooks };
}
