import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request } from 'express';
import type { Logger } from 'pino';

/** Paths polled by orchestrators and scrapers, logged at debug only. */
const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Logs one line per finished request: method, path (without the query string), route pattern, status and
 * duration in ms. Never bodies, headers or query strings: uploads carry client updates, and tokens travel
 * in headers (privacy invariant 1). On Node's own objects, so that routes served ahead of express
 * (src/api/raw-routes.ts) log alike; `route()` is read when the response finishes (express knows the route
 * only once it has matched).
 */
export function requestLogger(
  log: Logger,
): (req: IncomingMessage, res: ServerResponse, route: () => string) => void {
  return (req, res, route) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const status = res.statusCode;
      const path = pathOf(req);
      // The error handler already logged a 5xx with its error; probes would drown everything else.
      const level = status >= 500 && status !== 503 ? 'warn' : PROBES.has(path) ? 'debug' : 'info';
      // Nothing is built for a line not written (a cohort's polls finish a thousand at a time).
      if (!log.isLevelEnabled(level)) return;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log[level](
        { method: req.method, path, route: route(), status, duration_ms: Math.round(ms * 100) / 100 },
        'request',
      );
    });
  };
}

/** A request's path without its query string (express's `originalUrl` when a router rewrote `url`). */
export function pathOf(req: IncomingMessage & { readonly originalUrl?: string }): string {
  const url = req.originalUrl || req.url || '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/**
 * The pattern of the route that answered (`/v1/plans/:id`), `unmatched` when none did. Routers in this API
 * declare full paths, so the route's own path is the whole pattern; a bounded set, fit for metric labels.
 */
export function routePattern(req: Request): string {
  const route = (req as Request & { route?: { path?: unknown } }).route;
  return typeof route?.path === 'string' ? route.path : 'unmatched';
}
