import type { RequestHandler } from 'express';
import type { ApiMetrics } from '../metrics';
import { routePattern } from './request-log';

/** Counts every finished request by method, route pattern and status, and observes its duration. */
export function httpMetrics(metrics: ApiMetrics): RequestHandler {
  return (req, res, next) => {
    const stop = metrics.durations.startTimer();
    res.on('finish', () => {
      const route = routePattern(req);
      metrics.requests.inc({ method: req.method, route, status: String(res.statusCode) });
      stop({ method: req.method, route });
    });
    next();
  };
}
