/**
 * Random identifiers (docs/server.md, "Identifiers"). Task ids are unguessable and unlinked to clients, so
 * they come from the CSPRNG; plan ids are short enough to type but still random.
 */
import { randomBytes } from 'node:crypto';

/** Crockford's lowercase base32 alphabet: no i, l, o, u, so ids read aloud or typed stay unambiguous. */
const BASE32 = '0123456789abcdefghjkmnpqrstvwxyz';

/** Shape of a plan id: `p` + 12 lowercase base32 characters. */
export const PLAN_ID_PATTERN = /^p[0-9a-hjkmnp-tv-z]{12}$/;

/** Shape of a task id: 22 base64url characters (128 bits). */
export const TASK_ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/** A new plan id, `p` + 12 random base32 characters (60 bits). */
export function newPlanId(): string {
  return planIdFromBytes(randomBytes(12));
}

/**
 * The plan id that 12 bytes spell, one base32 character from each byte's low 5 bits: random bytes for a new
 * plan, a hash for a fixed id (the conformance kit's plans).
 */
export function planIdFromBytes(bytes: Uint8Array): string {
  // 256 is a multiple of 32, so masking each byte to 5 bits keeps every character uniform.
  let id = 'p';
  for (const b of bytes.subarray(0, 12)) id += BASE32[b & 31];
  return id;
}

/** A new task id, 22 base64url characters carrying 128 random bits. */
export function newTaskId(): string {
  return randomBytes(16).toString('base64url');
}

/** Whether a string has the shape of a plan id (for path parameters). */
export function isPlanId(id: string): boolean {
  return PLAN_ID_PATTERN.test(id);
}

/** Whether a string has the shape of a task id (for path parameters). */
export function isTaskId(id: string): boolean {
  return TASK_ID_PATTERN.test(id);
}
