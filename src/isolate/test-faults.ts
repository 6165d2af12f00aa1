/**
 * Test-only fault injection (`ISOLATE_TEST_FAULTS=1`; never in production): a plan named
 * `fault-<kind>-<op>` (for example `fault-abort-fold`, plan names allow no other punctuation) breaks its isolate in that task, so that tests can
 * show that only the plan's own round fails; a stateful program named `fault-<kind>-call` breaks it in a
 * call of any of its computations (`callProgram`, whose round is the step's index). Kinds: `crash` (the thread exits), `hang` (a busy loop until
 * the timeout), `oom` (JS heap exhaustion, ended by `resourceLimits`), `abort` (the WASM backend runs out
 * of its capped memory, as a memory-bomb plan would make it), `slow` (a busy loop of {@link SLOW_MS}, then
 * the task runs: synchronous work that outlasts job locks and leases). A `-once` suffix breaks only the
 * first such task of the plan in the process (its isolates share the flags of `once-flags.ts`), so that tests can show
 * a fault retried and then succeeding.
 */
import * as tf from '@tensorflow/tfjs';
import { firstTime } from './once-flags';

const FAULT =
  /^fault-(crash|hang|oom|abort|slow)-(initialize|materials|fold|finalize|call)(?:-from(\d+))?(-once)?(?![a-z0-9])/;

/** How long a `slow` fault keeps its isolate busy, in ms. */
export const SLOW_MS = 5000;

/**
 * Breaks the isolate as the plan's name asks, when `op` is the named task (of round `round` or later with
 * a `-from<N>` suffix, e.g. `fault-crash-materials-from2`; only the first time with `-once`, given the
 * pool's `once` flags); else returns.
 */
export function injectFault(
  planName: string,
  op: string,
  round: number,
  maxWasmBytes: number,
  once?: SharedArrayBuffer,
): void {
  const m = FAULT.exec(planName);
  if (!m || m[2] !== op || round < Number(m[3] ?? 0)) return;
  if (m[4] && (!once || !firstTime(once, `${planName}/${op}`))) return;
  switch (m[1]) {
    case 'crash':
      process.exit(70);
      break;
    case 'hang':
      for (;;) {
        // spins until the host terminates the isolate
      }
    case 'oom': {
      const hog: number[][] = [];
      for (;;) hog.push(new Array<number>(1 << 20).fill(1));
    }
    case 'abort': {
      // Allocates on the backend until its WebAssembly memory cap stops it, leaking on purpose.
      const n = Math.max(1, Math.floor(maxWasmBytes / 4 / 8));
      for (let i = 0; i < 64; i++) tf.fill([n], 1.5).dataSync();
      throw new Error('the backend did not run out of memory');
    }
    case 'slow': {
      const until = Date.now() + SLOW_MS;
      while (Date.now() < until) {
        // spins: the thread is busy, as a long synchronous fold keeps it
      }
      return;
    }
  }
}
