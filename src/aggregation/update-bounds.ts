/**
 * Enforces a plan's `update_bounds` on one client's plain update U, on typed arrays (no tf), so that the
 * upload route and the local runner apply exactly the same arithmetic. A `reject` bound refuses the
 * update with UPDATE_OUT_OF_BOUNDS naming the tensor; a `clip` bound clamps elements into the range or
 * scales a group of float32 tensors down to the norm bound. Ranges apply first, then norms (a norm scale
 * is at most 1, so it keeps elements inside any range that contains 0). Nothing is changed in place: a
 * clipped tensor is a fresh copy, so the caller's bytes (and their duplicate-detection hash) stay intact.
 */
import { writeBundle, type BundleData, type BundleTensor } from '../codec';
import { tensorLeaves } from '../compute/types';
import { dpBounds } from '../dp/mechanism';
import { AppError } from '../errors';
import { dpOf } from '../plan/dp-check';
import type { CheckedPlan } from '../plan/validate';
import {
  resolveUpdateBounds,
  type ResolvedBounds,
  type ResolvedNorm,
  type ResolvedRange,
} from '../plan/update-bounds-check';

/** U's tensors after the bounds: the same arrays where nothing changed, fresh copies where clipped. */
export interface BoundedUpdate {
  readonly data: BundleData[];
  /** Whether any element was clipped or any group scaled. */
  readonly changed: boolean;
}

function outOfBounds(path: string, message: string): AppError {
  return new AppError('UPDATE_OUT_OF_BOUNDS', 'the update breaks a bound the plan declares', [
    { path: path || 'U', message },
  ]);
}

/**
 * Applies resolved bounds to U's tensors (in `tensorLeaves(U)` order). Throws AppError UPDATE_OUT_OF_BOUNDS
 * for the first `reject` bound broken; otherwise returns the clipped tensors.
 */
export function applyUpdateBounds(bounds: ResolvedBounds, data: readonly BundleData[]): BoundedUpdate {
  const out = [...data];
  const copied = new Set<number>();
  const writable = (k: number): BundleData => {
    if (!copied.has(k)) {
      out[k] = out[k]!.slice();
      copied.add(k);
    }
    return out[k]!;
  };
  for (const r of bounds.ranges) applyRange(r, bounds, out, writable);
  for (const n of bounds.norms) applyNorm(n, bounds, out, writable);
  return { data: out, changed: copied.size > 0 };
}

function applyRange(
  r: ResolvedRange,
  bounds: ResolvedBounds,
  out: BundleData[],
  writable: (k: number) => BundleData,
): void {
  for (const k of r.leaves) {
    const values = out[k]!;
    let target: BundleData | undefined;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v >= r.min && v <= r.max) continue;
      const path = bounds.leaves[k]!.path;
      if (r.mode === 'reject') {
        throw outOfBounds(path, `element ${i} is ${v}, outside [${r.min}, ${r.max}] (${r.pointer})`);
      }
      target ??= writable(k);
      target[i] = v < r.min ? r.min : r.max;
    }
  }
}

function applyNorm(
  n: ResolvedNorm,
  bounds: ResolvedBounds,
  out: BundleData[],
  writable: (k: number) => BundleData,
): void {
  // float64 accumulation: float32 elements up to 3.4e38 square to 1.2e77, far inside float64's range.
  let squares = 0;
  for (const k of n.leaves) {
    const values = out[k]!;
    for (let i = 0; i < values.length; i++) squares += values[i]! * values[i]!;
  }
  const norm = Math.sqrt(squares);
  if (norm <= n.maxNorm) return;
  const paths = n.leaves.map((k) => bounds.leaves[k]!.path || 'U').join(', ');
  if (n.mode === 'reject') {
    throw outOfBounds(
      n.leaves.length === 1 ? bounds.leaves[n.leaves[0]!]!.path : paths,
      `L2 norm ${norm} of ${paths} is over ${n.maxNorm} (${n.pointer})`,
    );
  }
  const scale = n.maxNorm / norm;
  for (const k of n.leaves) {
    const values = writable(k);
    for (let i = 0; i < values.length; i++) values[i] = values[i]! * scale;
  }
}

/**
 * U's tensors after the plan's update bounds and, for a dp plan, the server's clip at `dpClip` (which the
 * round's record must get: a dp plan without its clip is a bug). The one function the upload route and the
 * local runner both bound U with.
 */
export function boundedU(checked: CheckedPlan, data: readonly BundleData[], dpClip?: number): BoundedUpdate {
  const bounds = boundsOf(checked);
  let out: BoundedUpdate = { data: [...data], changed: false };
  if (bounds) out = applyUpdateBounds(bounds, out.data);
  // A secure record is not in U: nothing of a secure dp plan's U is the server's to clip.
  const dp = dpOf(checked);
  if (dp && !dp.secure) {
    if (dpClip === undefined) throw new Error('an update of a dp plan was bounded without the round clip');
    const clipped = applyUpdateBounds(dpBounds(dp, checked.types.U, dpClip), out.data);
    out = { data: clipped.data, changed: out.changed || clipped.changed };
  }
  return out;
}

const resolvedByPlan = new WeakMap<CheckedPlan, ResolvedBounds | null>();

/** A checked plan's bounds resolved against its U (once per plan object), or undefined when it declares none. */
export function boundsOf(checked: CheckedPlan): ResolvedBounds | undefined {
  let r = resolvedByPlan.get(checked);
  if (r === undefined) {
    const bounds = checked.plan.update_bounds;
    const empty = !bounds || ((bounds.ranges?.length ?? 0) === 0 && (bounds.norms?.length ?? 0) === 0);
    // checkPlan has already refused bounds that do not resolve, so `resolved` is set here.
    r = empty ? null : (resolveUpdateBounds(bounds, checked.types.U).resolved ?? null);
    resolvedByPlan.set(checked, r);
  }
  return r ?? undefined;
}

/**
 * Applies a plan's update bounds to a whole upload bundle `<U, V1, V2, V3>` whose tensors were read (and
 * checked against the upload type) by `readTypedBundle`; U's tensors come first. Returns the bytes to
 * store in place of the upload when a `clip` bound changed U, else undefined (store the upload as it
 * came). Throws AppError UPDATE_OUT_OF_BOUNDS when a `reject` bound is broken.
 */
export function boundUpload(
  checked: CheckedPlan,
  tensors: readonly BundleTensor[],
  metadata: Record<string, string>,
  /** A dp plan's clip for the round: its record is clipped to it after the plan's own bounds. */
  dpClip?: number,
): Uint8Array | undefined {
  const u = tensorLeaves(checked.types.U).length;
  const { data, changed } = boundedU(
    checked,
    tensors.slice(0, u).map((t) => t.data),
    dpClip,
  );
  if (!changed) return undefined;
  const bounded = tensors.map((t, k) => (k < u ? { ...t, data: data[k]! } : t));
  return writeBundle(bounded, Object.keys(metadata).length > 0 ? metadata : undefined);
}
