import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The API's Prometheus metrics, in a registry of their own (not prom-client's global one) so that tests and
 * embedders can build several apps in one process. Counts and durations only: no metric ever carries a
 * value of a client update, a client id or a task id (privacy invariant 1); labels are bounded sets.
 */
export interface ApiMetrics {
  readonly registry: Registry;
  /** Check-ins by outcome: `assigned` or `retry`. */
  readonly checkins: Counter<'outcome'>;
  /** Uploads by outcome: `accepted` or the error code answered. */
  readonly uploads: Counter<'outcome'>;
  /** HTTP requests by method, route pattern (never the concrete path) and status. */
  readonly requests: Counter<'method' | 'route' | 'status'>;
  /** HTTP request durations in seconds by method and route pattern. */
  readonly durations: Histogram<'method' | 'route'>;
  /**
   * Per dp plan: the epsilon its completed rounds spent and its target (`of` = spent | target), set from the
   * store at each scrape. A plan id is an operator's, not a client's; the set is the stored plans.
   */
  readonly privacy: Gauge<'plan' | 'of'>;
  /** Polls the process holds now (`?wait=`). */
  readonly heldPolls: Gauge;
  /** Polls answered at once because a bound on held polls was reached, by `bound`: `holder` or `process`. */
  readonly unheldPolls: Counter<'bound'>;
}

/** Creates the metrics; `defaultMetrics` adds prom-client's process metrics (CPU, memory, event loop). */
export function createMetrics(options: { defaultMetrics?: boolean } = {}): ApiMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  return {
    registry,
    checkins: new Counter({
      name: 'roundhouse_checkins_total',
      help: 'Client check-ins by outcome (assigned, retry).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    uploads: new Counter({
      name: 'roundhouse_uploads_total',
      help: 'Task result uploads by outcome (accepted, or the error code answered).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    requests: new Counter({
      name: 'roundhouse_http_requests_total',
      help: 'HTTP requests by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    durations: new Histogram({
      name: 'roundhouse_http_request_duration_seconds',
      help: 'HTTP request durations by method and route pattern.',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    privacy: new Gauge({
      name: 'roundhouse_plan_dp_epsilon',
      help: 'Differential privacy of each dp plan: epsilon spent by its completed rounds, and its target (label of).',
      labelNames: ['plan', 'of'],
      registers: [registry],
    }),
    heldPolls: new Gauge({
      name: 'roundhouse_held_polls',
      help: "Polls this process holds now (a session's requests, a task's SecAgg step).",
      registers: [registry],
    }),
    unheldPolls: new Counter({
      name: 'roundhouse_polls_unheld_total',
      help: 'Polls answered at once because a bound on held polls was reached (bound: holder, process).',
      labelNames: ['bound'],
      registers: [registry],
    }),
  };
}
