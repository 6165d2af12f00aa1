/**
 * Time as the client sees it. Injected so that tests drive retry windows and deadlines with a fake clock,
 * and so that a simulator can shrink waits without touching the protocol.
 */
export interface Clock {
  /** Unix ms; compared with an assignment's `deadline`, which the server gives in unix ms. */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason as soon as `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Real time: `Date.now` and `setTimeout`. */
export const realClock: Clock = Object.freeze({
  now: () => Date.now(),
  sleep: (ms: number, signal?: AbortSignal) => abortableTimeout(ms, signal),
});

/**
 * A clock whose sleeps last `scale` times as long (0.1 makes a 10 s retry window pass in 1 s) while `now`
 * stays real, because deadlines come from the server's real clock. For demos and simulations only: a real
 * client that comes back early just gets another retry window.
 */
export function scaledClock(scale: number, base: Clock = realClock): Clock {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`time scale ${scale} is not positive`);
  return { now: () => base.now(), sleep: (ms, signal) => base.sleep(ms * scale, signal) };
}

function abortableTimeout(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The error an aborted wait rejects with: the signal's reason, which `AbortController.abort()` sets. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}
