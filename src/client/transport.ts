/**
 * HTTP for the client: one place that turns every answer into a typed result or a {@link RoundhouseError}
 * and retries transient failures (network, 5xx, 503 BUSY) with exponential backoff and jitter, honouring
 * the server's `Retry-After`.
 */
import { abortReason, type Clock } from './clock';
import { errorFromResponse, RoundhouseError } from './errors';

/** How transient failures are retried. */
export interface RetryOptions {
  /** Tries per request, the first included (default 4). */
  readonly attempts?: number;
  /** The first backoff, in ms (default 500); it doubles with every retry. */
  readonly baseMs?: number;
  /** The longest backoff, in ms (default 30000); a longer `Retry-After` from the server still wins. */
  readonly maxMs?: number;
}

/** The defaults of {@link RetryOptions}. */
export const DEFAULT_RETRY = {
  attempts: 4,
  baseMs: 500,
  maxMs: 30_000,
} as const satisfies Required<RetryOptions>;

/**
 * The wait before retry number `retry` (1 for the first retry): "equal jitter", half of the exponential
 * step fixed and half random, so that waits grow for sure while clients that failed together spread out.
 */
export function backoffMs(retry: number, options: RetryOptions, random: () => number): number {
  const base = options.baseMs ?? DEFAULT_RETRY.baseMs;
  const max = options.maxMs ?? DEFAULT_RETRY.maxMs;
  const step = Math.min(max, base * 2 ** Math.max(0, retry - 1));
  return step / 2 + (random() * step) / 2;
}

/** Per-request knobs of {@link Transport.send}. */
export interface SendOptions {
  readonly signal?: AbortSignal;
  /** Unix ms after which no retry starts (an upload past its task's deadline would be refused anyway). */
  readonly until?: number;
  /** Statuses besides 2xx that are answers rather than failures (304 for conditional requests). */
  readonly accept?: readonly number[];
}

/** A transient failure that was not retried because the retry could not start before `until`. */
export class DeadlineExceeded extends Error {
  constructor(readonly last: RoundhouseError) {
    super(`gave up before the deadline: ${last.message}`);
    this.name = 'DeadlineExceeded';
  }
}

/** Sends requests with retries; see the module comment. */
export class Transport {
  constructor(
    private readonly fetchFn: typeof fetch,
    private readonly clock: Clock,
    private readonly random: () => number,
    private readonly retry: RetryOptions = {},
  ) {}

  /** Sends one request, retrying transient failures; resolves with the response or throws the last error. */
  async send(url: string, init: RequestInit, options: SendOptions = {}): Promise<Response> {
    const attempts = Math.max(1, this.retry.attempts ?? DEFAULT_RETRY.attempts);
    for (let attempt = 1; ; attempt++) {
      let error: RoundhouseError;
      try {
        return await this.once(url, init, options);
      } catch (e) {
        if (!(e instanceof RoundhouseError) || !e.transient) throw e;
        error = e;
      }
      if (attempt >= attempts) throw error;
      const wait = Math.max(backoffMs(attempt, this.retry, this.random), error.retryAfterMs ?? 0);
      if (options.until !== undefined && this.clock.now() + wait >= options.until) {
        throw new DeadlineExceeded(error);
      }
      await this.clock.sleep(wait, options.signal);
    }
  }

  private async once(url: string, init: RequestInit, options: SendOptions): Promise<Response> {
    const { signal } = options;
    if (signal?.aborted) throw abortReason(signal);
    let res: Response;
    try {
      res = await this.fetchFn(url, signal ? { ...init, signal } : init);
    } catch (e) {
      if (signal?.aborted) throw abortReason(signal);
      throw new RoundhouseError(0, 'NETWORK', `${init.method ?? 'GET'} ${url}: ${causeOf(e)}`);
    }
    if (res.ok || options.accept?.includes(res.status)) return res;
    throw await errorFromResponse(res, this.clock.now());
  }
}

/** fetch hides the socket error (ECONNREFUSED, ECONNRESET) in `cause`. */
function causeOf(e: unknown): string {
  const cause = (e as { cause?: unknown } | undefined)?.cause;
  if (cause instanceof Error) return cause.message;
  return e instanceof Error ? e.message : String(e);
}
