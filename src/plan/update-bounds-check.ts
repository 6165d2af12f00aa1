import {
  formatType,
  INT32_MAX,
  INT32_MIN,
  isInt32,
  tensorLeaves,
  type Dtype,
  type TensorLeaf,
  type TffType,
} from '../compute/types';
import type { ErrorDetail } from '../errors';
import type { BoundMode, UpdateBounds } from '../generated/plan';

/** A value range resolved against U: the indices of the tensors it covers, in `tensorLeaves(U)` order. */
export interface ResolvedRange {
  /** JSON pointer of the declaration, e.g. `/update_bounds/ranges/0`. */
  readonly pointer: string;
  readonly path: string;
  readonly leaves: readonly number[];
  /** -Infinity or +Infinity where the plan gives no bound. */
  readonly min: number;
  readonly max: number;
  readonly mode: BoundMode;
}

/** A norm bound resolved against U: the float32 tensors whose elements form one vector. */
export interface ResolvedNorm {
  readonly pointer: string;
  readonly paths: readonly string[];
  readonly leaves: readonly number[];
  readonly maxNorm: number;
  readonly mode: BoundMode;
}

/** A plan's update bounds resolved against its U, ready to be applied to U's tensors. */
export interface ResolvedBounds {
  /** Every tensor of U, by its path inside U ("delta/w0"; "" for a bare tensor U) and dtype. */
  readonly leaves: readonly { readonly path: string; readonly dtype: Dtype }[];
  readonly ranges: readonly ResolvedRange[];
  readonly norms: readonly ResolvedNorm[];
}

/** The path of a leaf inside U as update_bounds spells it: field names (indices when unnamed) joined by "/". */
export function updatePathOf(leaf: TensorLeaf): string {
  return leaf.path.join('/');
}

/**
 * The leaves of U that `path` names: the leaf at that path, or every leaf below a struct there ("" names
 * all of U). Empty when the path names nothing.
 */
export function leavesAt(leaves: readonly TensorLeaf[], path: string): number[] {
  const segments = path === '' ? [] : path.split('/');
  const out: number[] = [];
  leaves.forEach((leaf, i) => {
    if (segments.length <= leaf.path.length && segments.every((s, k) => leaf.path[k] === s)) out.push(i);
  });
  return out;
}

/**
 * Resolves `update_bounds` against U and reports every problem with a JSON pointer: paths that name no
 * tensor of U, ranges on bool tensors, int32 ranges whose ends are not int32 integers, min above max, a
 * range with neither end, and norm bounds over tensors that are not float32. `resolved` is set only when
 * there is no problem; `undefined` bounds resolve to nothing to enforce.
 */
export function resolveUpdateBounds(
  bounds: UpdateBounds | undefined,
  U: TffType,
): { resolved?: ResolvedBounds; errors: ErrorDetail[] } {
  let leaves: TensorLeaf[];
  try {
    leaves = tensorLeaves(U);
  } catch {
    // A U holding a sequence is already refused by the form checks; nothing here to add.
    return { errors: [] };
  }
  const errors: ErrorDetail[] = [];
  const ranges: ResolvedRange[] = [];
  const norms: ResolvedNorm[] = [];
  const named = (path: string, pointer: string): number[] => {
    const found = leavesAt(leaves, path);
    if (found.length === 0) {
      errors.push({
        path: pointer,
        message: `"${path}" names no tensor of the update U ${formatType(U)}`,
      });
    }
    return found;
  };

  (bounds?.ranges ?? []).forEach((r, i) => {
    const pointer = `/update_bounds/ranges/${i}`;
    const found = named(r.path, `${pointer}/path`);
    const min = r.min ?? -Infinity;
    const max = r.max ?? Infinity;
    let ok = found.length > 0;
    if (r.min === undefined && r.max === undefined) {
      errors.push({ path: pointer, message: 'a range needs min, max or both' });
      ok = false;
    } else if (min > max) {
      errors.push({ path: `${pointer}/min`, message: `min ${min} is more than max ${max}` });
      ok = false;
    }
    for (const k of found) {
      const leaf = leaves[k]!;
      const where = updatePathOf(leaf) || 'U';
      if (leaf.type.dtype === 'bool') {
        errors.push({
          path: `${pointer}/path`,
          message: `${where} is bool; value ranges apply to int32 and float32 tensors`,
        });
        ok = false;
      } else if (leaf.type.dtype === 'int32') {
        for (const [end, v] of [
          ['min', r.min],
          ['max', r.max],
        ] as const) {
          if (v !== undefined && !isInt32(v)) {
            errors.push({
              path: `${pointer}/${end}`,
              message: `${end} ${v} does not fit ${where}, which is int32 (an integer in [${INT32_MIN}, ${INT32_MAX}])`,
            });
            ok = false;
          }
        }
      }
    }
    if (ok) ranges.push({ pointer, path: r.path, leaves: found, min, max, mode: r.mode });
  });

  (bounds?.norms ?? []).forEach((n, i) => {
    const pointer = `/update_bounds/norms/${i}`;
    const covered = new Set<number>();
    let ok = true;
    n.paths.forEach((path, j) => {
      const found = named(path, `${pointer}/paths/${j}`);
      if (found.length === 0) ok = false;
      for (const k of found) {
        const leaf = leaves[k]!;
        if (leaf.type.dtype !== 'float32') {
          errors.push({
            path: `${pointer}/paths/${j}`,
            message: `${updatePathOf(leaf) || 'U'} is ${leaf.type.dtype}; norm bounds apply to float32 tensors only`,
          });
          ok = false;
        }
        covered.add(k);
      }
    });
    if (ok) {
      norms.push({
        pointer,
        paths: n.paths,
        leaves: [...covered].sort((a, b) => a - b),
        maxNorm: n.max_norm,
        mode: n.mode,
      });
    }
  });

  if (errors.length > 0) return { errors };
  return {
    resolved: {
      leaves: leaves.map((l) => ({ path: updatePathOf(l), dtype: l.type.dtype })),
      ranges,
      norms,
    },
    errors,
  };
}

/** The problems of a plan's `update_bounds` against its U, each with a JSON pointer (checkPlan's hook). */
export function updateBoundsErrors(bounds: UpdateBounds | undefined, U: TffType): ErrorDetail[] {
  return bounds ? resolveUpdateBounds(bounds, U).errors : [];
}
