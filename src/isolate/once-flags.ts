/**
 * Test fault injection only (`ISOLATE_TEST_FAULTS`, src/isolate/test-faults.ts): which `-once` faults fired.
 * The flags live in a SharedArrayBuffer that the pool hands every isolate it starts, since the isolate a
 * fault breaks is gone when the task is retried on the next.
 */

/** Slots of the flags: one per plan name and task, by hash (a collision only skips a fault). */
const ONCE_SLOTS = 256;

/** Fresh flags, none fired. */
export function newOnceFlags(): SharedArrayBuffer {
  return new SharedArrayBuffer(ONCE_SLOTS * 4);
}

/** Whether this is the first time `key` is asked about among the isolates sharing `flags` (atomically). */
export function firstTime(flags: SharedArrayBuffer, key: string): boolean {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (Math.imul(h, 31) + key.charCodeAt(i)) | 0;
  return Atomics.compareExchange(new Int32Array(flags), (h >>> 0) % ONCE_SLOTS, 0, 1) === 0;
}
