/**
 * The only things a client keeps between tasks: copies of immutable resources. Client plans never change
 * once published, so one is fetched at most once per plan id; a broadcast is immutable too, but is kept by
 * URL with its ETag and revalidated with `If-None-Match`, so that a cache that outlives a server's data
 * (a reused URL after a Redis flush) cannot feed a client stale bytes.
 */
import { RoundhouseError } from './errors';
import type { Transport } from './transport';
import { clientPlanFormatProblem, type ClientPlan } from './types';

/** The client plan, if its `format` is the one this client reads. */
function checkFormat(plan: ClientPlan): ClientPlan {
  const problem = clientPlanFormatProblem(plan);
  if (problem === null) return plan;
  throw new RoundhouseError(400, 'CLIENT_PLAN_UNSUPPORTED', problem);
}

/** Broadcasts of older rounds are useless once a round is over; a handful covers overlapping tasks. */
const BROADCASTS_KEPT = 4;

/** Fetches client plans and broadcasts through a {@link Transport}, with the caching described above. */
export class ResourceCache {
  private readonly plans = new Map<string, Promise<ClientPlan>>();
  private readonly broadcasts = new Map<string, { readonly etag: string; readonly bytes: Uint8Array }>();

  constructor(private readonly transport: Transport) {}

  /**
   * The client plan of `planId`. Concurrent callers share one request; a failed request is forgotten so
   * that the next caller tries again. `until` (unix ms, a task's deadline) bounds its tries.
   */
  clientPlan(planId: string, url: string, signal?: AbortSignal, until?: number): Promise<ClientPlan> {
    let pending = this.plans.get(planId);
    if (!pending) {
      pending = this.transport.request(
        url,
        { headers: { accept: 'application/json' } },
        { signal, ...(until === undefined ? {} : { until }) },
        async (res) => checkFormat((await res.json()) as ClientPlan),
      );
      this.plans.set(planId, pending);
      pending.catch(() => this.plans.delete(planId));
    }
    return pending;
  }

  /** A broadcast's bytes: a 304 answer to `If-None-Match` reuses the cached copy. */
  async broadcast(url: string, signal?: AbortSignal, until?: number): Promise<Uint8Array> {
    const cached = this.broadcasts.get(url);
    const headers: Record<string, string> = { accept: 'application/octet-stream' };
    if (cached) headers['if-none-match'] = cached.etag;
    const res = await this.transport.request(
      url,
      { headers },
      { signal, accept: [304], ...(until === undefined ? {} : { until }) },
      async (r) => ({
        status: r.status,
        etag: r.headers.get('etag'),
        bytes: r.status === 304 ? undefined : new Uint8Array(await r.arrayBuffer()),
      }),
    );
    if (res.status === 304 && cached) {
      // Most recently used last, so that eviction below drops the oldest.
      this.broadcasts.delete(url);
      this.broadcasts.set(url, cached);
      return cached.bytes;
    }
    if (res.status === 304)
      throw new Error(`GET ${url}: 304 Not Modified for a request without If-None-Match`);
    const bytes = res.bytes ?? new Uint8Array(0);
    const { etag } = res;
    if (etag) {
      this.broadcasts.delete(url);
      this.broadcasts.set(url, { etag, bytes });
      while (this.broadcasts.size > BROADCASTS_KEPT) {
        this.broadcasts.delete(this.broadcasts.keys().next().value as string);
      }
    }
    return bytes;
  }
}
