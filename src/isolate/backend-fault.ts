import { OpError } from '../compute/ops/op';
import { AppError } from '../errors';
import { capHit } from './wasm-cap';

/** Messages of errors from the backend itself (not ours) that mean it broke. */
const BACKEND_FAULT = /Aborted\(|memory access out of bounds|out of memory|unreachable|RuntimeError/i;

/**
 * Whether an error, or an error it wraps (`cause`), comes from a broken backend: a WebAssembly trap, or a
 * backend error whose message says so. Our own errors (AppError, OpError) are skipped, since their
 * messages quote plan names, which a plan could choose to look like a fault.
 */
export function backendFault(e: unknown): boolean {
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 8; c = c.cause, depth++) {
    if (c instanceof WebAssembly.RuntimeError) return true;
    if (!(c instanceof AppError) && !(c instanceof OpError) && BACKEND_FAULT.test(c.message)) return true;
  }
  return !(e instanceof Error);
}

/**
 * Whether an error caught inside an evaluation means the backend of this thread broke (so the evaluation
 * must fault, not answer a plan error or reject an upload): {@link backendFault}, or the WebAssembly memory
 * cap was hit since the thread started.
 */
export function brokenBackend(e: unknown): boolean {
  return capHit() || backendFault(e);
}
