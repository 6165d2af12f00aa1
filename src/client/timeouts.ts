/**
 * Per-request timeouts of the client SDK: a request that the server (or a proxy, or the network) never
 * answers fails as a transient TIMEOUT and is retried like a network error, instead of hanging its task.
 * Real time, never the injected clock: a simulation's scaled clock must not shorten the network's time.
 */
import { RoundhouseError } from './errors';

/** How long one try of a request may take. */
export interface TimeoutOptions {
  /**
   * Until the server starts answering (its response headers), in ms (default 10000): a connection that
   * cannot be made, a server that accepts and never answers. Not for uploads, whose answer comes only
   * after their body is sent, however long that takes: `totalMs` and the task's deadline bound those.
   */
  readonly connectMs?: number;
  /**
   * Until the whole answer is read, body included, in ms (default 120000). An upload's try also ends at
   * its task's deadline, after which the server would refuse it.
   */
  readonly totalMs?: number;
}

/** The defaults of {@link TimeoutOptions}. */
export const DEFAULT_TIMEOUTS = {
  connectMs: 10_000,
  totalMs: 120_000,
} as const satisfies Required<TimeoutOptions>;

/** The clock of one try: its signal aborts when the caller's does or a timeout expires. */
export interface TryTimer {
  /** For fetch: aborts the request and the reading of its body. */
  readonly signal: AbortSignal;
  /** The TIMEOUT error once a timeout expired. */
  readonly expired: RoundhouseError | undefined;
  /** The response headers arrived: the connect timeout no longer applies. */
  answered(): void;
  /** The try is over: stops the timers and lets go of the caller's signal. */
  clear(): void;
}

/** Starts the timers of one try of `what` (e.g. `GET <url>`); `connectMs` undefined for none. */
export function startTry(
  what: string,
  outer: AbortSignal | undefined,
  connectMs: number | undefined,
  totalMs: number,
): TryTimer {
  const controller = new AbortController();
  let expired: RoundhouseError | undefined;
  let answered = false;
  let over = false;
  // Decided one turn of the event loop after the timer: when the loop was blocked for longer than the
  // timeout (a long synchronous step, such as `work` in a simulation sharing the thread), the timer fires
  // before an answer that already arrived is read; a timer of 0 runs after the loop has read its sockets.
  const expire = (ms: number, which: 'connect' | 'total') => (): void =>
    void setTimeout(() => {
      if (over || (which === 'connect' && answered)) return;
      const why = which === 'connect' ? 'no answer' : 'no complete answer';
      expired = new RoundhouseError(0, 'TIMEOUT', `${what}: ${why} within ${ms} ms`);
      controller.abort(expired);
    }, 0);
  const onOuter = (): void => controller.abort(outer?.reason);
  if (outer?.aborted) controller.abort(outer.reason);
  else outer?.addEventListener('abort', onOuter, { once: true });
  const total = unref(setTimeout(expire(totalMs, 'total'), totalMs));
  let connect =
    connectMs === undefined ? undefined : unref(setTimeout(expire(connectMs, 'connect'), connectMs));
  return {
    signal: controller.signal,
    get expired() {
      return expired;
    },
    answered() {
      answered = true;
      clearTimeout(connect);
      connect = undefined;
    },
    clear() {
      over = true;
      clearTimeout(connect);
      clearTimeout(total);
      outer?.removeEventListener('abort', onOuter);
    },
  };
}

/** Timers of a try must not keep a Node process alive on their own (browsers have no unref). */
function unref(timer: ReturnType<typeof setTimeout>): ReturnType<typeof setTimeout> {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}
