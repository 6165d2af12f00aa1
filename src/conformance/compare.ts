/**
 * How the conformance runner judges an upload (conformance/README.md, "Comparison"): the bundle must read as
 * the plan's upload type (exact names, dtypes and shapes, finite floats), then match the expected bundle
 * element by element, int32 and bool exactly and float32 within the case's tolerance.
 */
import { readTypedBundle, type BundleTensor } from '../codec';
import type { TffType } from '../compute/types';
import { formatFloat32 } from '../data/clients-csv';
import { AppError } from '../errors';
import { withinTolerance, type Tolerance } from './kit';

/** Why an upload does not match, naming the tensor and the first differing index; undefined when it does. */
export function compareUpload(
  got: Uint8Array,
  expected: Uint8Array,
  uploadType: TffType,
  tolerance: Tolerance,
): string | undefined {
  let mine: BundleTensor[];
  try {
    mine = readTypedBundle(got, uploadType).tensors;
  } catch (e) {
    if (!(e instanceof AppError)) throw e;
    const details = e.details.map((d) => `${d.path}: ${d.message}`).join('; ');
    // The message's first line ends in ":" before its details; they follow in parentheses here.
    const message = (e.message.split('\n')[0] ?? '').replace(/:$/, '');
    return `${e.code}: ${message}${details ? ` (${details})` : ''}`;
  }
  const theirs = readTypedBundle(expected, uploadType).tensors;
  for (const [i, want] of theirs.entries()) {
    const have = mine[i]!;
    if (have.shape.join(',') !== want.shape.join(','))
      return `tensor ${want.name}: shape [${have.shape.join(',')}], expected [${want.shape.join(',')}]`;
    const float = want.dtype === 'float32';
    for (let k = 0; k < want.data.length; k++) {
      const g = have.data[k]!;
      const w = want.data[k]!;
      if (float ? !withinTolerance(g, w, tolerance) : g !== w) {
        const allowed = float ? ` (tolerance abs ${tolerance.abs} + rel ${tolerance.rel} x |expected|)` : '';
        return `tensor ${want.name} index ${indexText(k, want.shape)}: got ${shown(g, want.dtype)}, expected ${shown(w, want.dtype)}${allowed}`;
      }
    }
  }
  return undefined;
}

/** A flat index, with its coordinates when the tensor has more than one dimension: `5 [1,1]`. */
function indexText(k: number, shape: readonly number[]): string {
  if (shape.length < 2) return String(k);
  const at: number[] = [];
  let rest = k;
  for (let d = shape.length - 1; d >= 0; d--) {
    at.unshift(rest % shape[d]!);
    rest = Math.floor(rest / shape[d]!);
  }
  return `${k} [${at.join(',')}]`;
}

/** A value as its dtype reads: float32 by its shortest decimal (0.7, not 0.699999988079071). */
function shown(v: number, dtype: BundleTensor['dtype']): string {
  return dtype === 'bool' ? String(v === 1) : dtype === 'float32' ? formatFloat32(v) : String(v);
}
