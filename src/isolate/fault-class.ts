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

function firstLine(message: string): string {
  return message.split('\n')[0] ?? '';
}
