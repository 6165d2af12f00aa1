/**
 * HTTP for the client: one place that turns every answer into a typed result or a {@link RoundhouseError}
 * and retries transient failures (network, timeouts, 5xx, 503 BUSY) with exponential backoff and jitter,
 * honouring the server's `Retry-After`. Every try has timeouts (src/client/timeouts.ts).
 */
import { abortReason, type Clock } from './clock';
import { errorFromResponse, RoundhouseError } from './errors';
import { DEFAULT_TIMEOUTS, startTry, type TimeoutOptions } from './timeouts';

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

/** Per-request knobs of {@link Transport.request}. */
export interface SendOptions {
  readonly signal?: AbortSignal;
  /**
   * Unix ms after which no retry starts (an upload past its task's deadline would be refused anyway); a try
   * also ends there.
   */
  readonly until?: number;
  /** Statuses besides 2xx that are answers rather than failures (304 for conditional requests). */
  readonly accept?: readonly number[];
  /**
   * The request sends a body whose transfer takes as long as it takes (an upload): the connect timeout
   * does not apply, only the total one and `until`.
   */
  readonly bulkBody?: boolean;
}

/** A transient failure that was not retried because the retry could not start before `until`. */
export class DeadlineExceeded extends Error {
  constructor(readonly last: RoundhouseError) {
    super(`gave up before the deadline: ${last.message}`);
    this.name = 'DeadlineExceeded';
  }
}

/** Sends requests with retries and per-try timeouts; see the module comment. */
export class Transport {
  constructor(
    private readonly fetchFn: typeof fetch,
    private readonly clock: Clock,
    private readonly random: () => number,
    private readonly retry: RetryOptions = {},
    private readonly timeouts: TimeoutOptions = {},
  ) {}

  /**
   * Sends one request and reads its answer with `read`, retrying transient failures (a timeout or a
   * connection lost while the body is read included); resolves with what `read` made or throws the last
   * error.
   */
  async request<T>(
    url: string,
    init: RequestInit,
    options: SendOptions,
    read: (res: Response) => Promise<T>,
  ): Promise<T> {
    const attempts = Math.max(1, this.retry.attempts ?? DEFAULT_RETRY.attempts);
    for (let attempt = 1; ; attempt++) {
      let error: RoundhouseError;
      try {
        return await this.once(url, init, options, read);
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

  /**
   * Sends one request, retrying transient failures; resolves with the response or throws the last error.
   * The total timeout stops at the headers: a caller that reads the body should use {@link request}.
   */
  send(url: string, init: RequestInit, options: SendOptions = {}): Promise<Response> {
    return this.request(url, init, options, async (res) => res);
  }

  private async once<T>(
    url: string,
    init: RequestInit,
    options: SendOptions,
    read: (res: Response) => Promise<T>,
  ): Promise<T> {
    const { signal } = options;
    if (signal?.aborted) throw abortReason(signal);
    const what = `${init.method ?? 'GET'} ${url}`;
    const totalMs = this.timeouts.totalMs ?? DEFAULT_TIMEOUTS.totalMs;
    const timer = startTry(
      what,
      signal,
      options.bulkBody ? undefined : (this.timeouts.connectMs ?? DEFAULT_TIMEOUTS.connectMs),
      options.until === undefined
        ? totalMs
        : Math.max(1, Math.min(totalMs, options.until - this.clock.now())),
    );
    // Why a try failed: the caller's abort, a timeout, or the network.
    const failure = (e: unknown): unknown => {
      if (signal?.aborted) return abortReason(signal);
      if (timer.expired) return timer.expired;
      if (e instanceof RoundhouseError || e instanceof SyntaxError) return e;
      return new RoundhouseError(0, 'NETWORK', `${what}: ${causeOf(e)}`);
    };
    try {
      let res: Response;
      try {
        res = await this.fetchFn(url, { ...init, signal: timer.signal });
      } catch (e) {
        throw failure(e);
      }
      // An injected fetch may not honour the signal: an answer after the timeout is still too late.
      if (timer.expired) throw timer.expired;
      timer.answered();
      try {
        if (res.ok || options.accept?.includes(res.status)) return await read(res);
        throw await errorFromResponse(res, this.clock.now());
      } catch (e) {
        throw failure(e);
      }
    } finally {
      timer.clear();
    }
  }
}

/** fetch hides the socket error (ECONNREFUSED, ECONNRESET) in `cause`. */
function causeOf(e: unknown): string {
  const cause = (e as { cause?: unknown } | undefined)?.cause;
  if (cause instanceof Error) return cause.message;
  return e instanceof Error ? e.message : String(e);
}

/**
 * A transport for polls the server may hold for `holdS` seconds before it answers: the hold is added to
 * both timeouts, since the answer's headers come only at its end.
 */
export function heldPollTransport(
  fetchFn: typeof fetch,
  clock: Clock,
  random: () => number,
  retry: RetryOptions | undefined,
  timeouts: TimeoutOptions | undefined,
  holdS: number,
): Transport {
  const held = holdS * 1000;
  return new Transport(fetchFn, clock, random, retry, {
    connectMs: (timeouts?.connectMs ?? DEFAULT_TIMEOUTS.connectMs) + held,
    totalMs: (timeouts?.totalMs ?? DEFAULT_TIMEOUTS.totalMs) + held,
  });
}
