/**
 * The fault classes of a plan evaluation on the server (docs/server.md, "Fault classes"): a plan fault fails
 * the round attempt at once; an isolate fault (`EVAL_FAULT`) is retried, since the host may be to blame
 * (a crash, a timeout on a loaded machine, a broken backend), until the attempt has faulted
 * `EVAL_FAULT_RETRIES` times, when it is deemed the plan's own; anything else (`NOT_READY`, Redis) is
 * retried without counting.
 */
import { isEvalFault, isPlanFault } from './contract';

/**
 * Classifies an error of an evaluation for a round attempt: resolves with the reason to fail the attempt
 * with, or rethrows `e` for the caller to retry (its job backs off). `countFault` counts one more fault of
 * the attempt, atomically, in Redis (so that every process sees the same count), and answers the new count
 * (-1 when the attempt is gone: `e` is rethrown, and the retry finds it gone).
 */
export async function failureReason(
  e: unknown,
  countFault: () => Promise<number>,
  retries: number,
): Promise<string> {
  if (isPlanFault(e)) return firstLine(e.message) || e.code;
  if (isEvalFault(e)) {
    const faults = await countFault();
    if (faults >= retries)
      return `${firstLine(e.message) || e.code} (${faults} faults in this attempt; EVAL_FAULT_RETRIES ${retries})`;
  }
  throw e;
}

/** How long the first in-place retry of {@link evaluateRetrying} waits; each next one twice as long. */
const RETRY_MS = 250;

/** What {@link evaluateRetrying} ends with: the value, or why the attempt fails. */
export type Retried<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/**
 * Runs an evaluation for a round attempt and retries it in place after an isolate fault (waiting 250 ms,
 * then twice as long each time) until it succeeds, fails as the plan's fault, or the attempt has faulted
 * `retries` times (see {@link failureReason}); other errors are thrown. For a step that no job of its own
 * retries: opening an attempt runs inside the job that finished the one before, whose backoff would grow
 * with every attempt that faults.
 */
export async function evaluateRetrying<T>(
  run: () => Promise<T>,
  countFault: () => Promise<number>,
  retries: number,
): Promise<Retried<T>> {
  for (let tries = 1, delay = RETRY_MS; ; tries++, delay *= 2) {
    try {
      return { ok: true, value: await run() };
    } catch (e) {
      let reason: string;
      try {
        reason = await failureReason(e, countFault, retries);
      } catch (again) {
        // Bounded even if the count cannot be kept (the attempt's plan is gone: countFault answers -1).
        if (again !== e || !isEvalFault(e) || tries >= retries) throw again;
        await new Promise((r) => setTimeout(r, delay));
        continue;
      }
      return { ok: false, reason };
    }
  }
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? '';
}
