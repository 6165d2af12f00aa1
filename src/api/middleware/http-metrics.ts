import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiMetrics } from '../metrics';

/** The series of one method, route pattern and status, looked up once. */
interface Series {
  readonly requests: { inc(): void };
  readonly durations: { observe(seconds: number): void };
}

/**
 * Counts every finished request by method, route pattern and status, and observes its duration. On Node's
 * own objects (src/api/raw-routes.ts); `route()` is read when the response finishes. Each label set's series
 * is looked up once: a cohort's long polls finish a thousand at a time, and resolving the labels of each
 * (prom-client hashes them per call) was a visible share of a woken poll's CPU (bench/sessions.ts). Label
 * sets are bounded: the methods Node's parser accepts, the route patterns, the statuses.
 */
export function requestObserver(
  metrics: ApiMetrics,
): (req: IncomingMessage, res: ServerResponse, route: () => string) => void {
  const series = new Map<string, Series>();
  const seriesOf = (method: string, route: string, status: string): Series => {
    const key = `${method} ${route} ${status}`;
    let s = series.get(key);
    if (!s) {
      s = {
        requests: metrics.requests.labels(method, route, status),
        durations: metrics.durations.labels(method, route),
      };
      series.set(key, s);
    }
    return s;
  };
  return (req, res, route) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const s = seriesOf(req.method ?? 'GET', route(), String(res.statusCode));
      s.requests.inc();
      s.durations.observe(Number(process.hrtime.bigint() - started) / 1e9);
    });
  };
}
