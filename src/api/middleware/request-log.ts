import type { Request, RequestHandler } from 'express';
import type { Logger } from 'pino';

/** Paths polled by orchestrators and scrapers, logged at debug only. */
const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

/** Options of {@link requestLog}. */
export interface RequestLogOptions {
  readonly log: Logger;
}

/**
 * Logs one line per finished request: method, path (without the query string), route pattern, status and
 * duration in ms. Never bodies, headers or query strings: uploads carry client updates, and tokens travel
 * in headers (privacy invariant 1).
 */
export function requestLog(options: RequestLogOptions): RequestHandler {
  const log = options.log;
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const status = res.statusCode;
      const line = {
        method: req.method,
        path: pathOf(req),
        route: routePattern(req),
        status,
        duration_ms: Math.round(ms * 100) / 100,
      };
      // The error handler already logged a 5xx with its error; probes would drown everything else.
      if (status >= 500 && status !== 503) log.warn(line, 'request');
      else if (PROBES.has(line.path)) log.debug(line, 'request');
      else log.info(line, 'request');
    });
    next();
  };
}

function pathOf(req: Request): string {
  const url = req.originalUrl || req.url;
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
