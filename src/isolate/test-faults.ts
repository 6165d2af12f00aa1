/**
 * Test-only fault injection (`ISOLATE_TEST_FAULTS=1`; never in production): a plan named
 * `fault-<kind>-<op>` (for example `fault-abort-fold`, plan names allow no other punctuation) breaks its isolate in that task, so that tests can
 * show that only the plan's own round fails. Kinds: `crash` (the thread exits), `hang` (a busy loop until
 * the timeout), `oom` (JS heap exhaustion, ended by `resourceLimits`), `abort` (the WASM backend runs out
 * of its capped memory, as a memory-bomb plan would make it).
 */
import * as tf from '@tensorflow/tfjs';

const FAULT = /^fault-(crash|hang|oom|abort)-(initialize|materials|fold|finalize)(?:-from(\d+))?(?![a-z0-9])/;

/**
 * Breaks the isolate as the plan's name asks, when `op` is the named task (of round `round` or later with
 * a `-from<N>` suffix, e.g. `fault-crash-materials-from2`); else returns.
 */
export function injectFault(planName: string, op: string, round: number, maxWasmBytes: number): void {
  const m = FAULT.exec(planName);
  if (!m || m[2] !== op || round < Number(m[3] ?? 0)) return;
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
  }
}
