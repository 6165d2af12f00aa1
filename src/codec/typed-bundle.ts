/**
 * Checking a bundle against the TFF type it should carry, still on typed arrays (no tf), so that an
 * aggregation worker can validate an upload and fold it into an accumulator without creating tensors.
 */
import { AppError, type ErrorDetail } from '../errors';
import { formatType, tensorLeaves, type TensorLeaf, type TffType } from '../compute/types';
import { readBundle, type BundleTensor } from './bundle';

/** Options of a typed read. */
export interface TypedReadOptions {
  /** Reject NaN and ±Infinity in float32 tensors (BUNDLE_NOT_FINITE); default true. */
  readonly requireFinite?: boolean;
}

/** The name a tensor leaf travels under: its field path joined by "/", or "value" for a bare tensor type. */
export function bundleTensorName(path: readonly string[]): string {
  return path.length === 0 ? 'value' : path.join('/');
}

/** The leaves of a type with their bundle names; throws BUNDLE_TYPE_MISMATCH for types holding a sequence. */
export function bundleLeaves(type: TffType): { readonly name: string; readonly leaf: TensorLeaf }[] {
  if (containsSequence(type)) {
    throw new AppError('BUNDLE_TYPE_MISMATCH', 'sequences cannot travel in a tensor bundle', [
      {
        path: 'header',
        message: `type ${formatType(type)} holds a sequence, which has no fixed set of tensors`,
      },
    ]);
  }
  return tensorLeaves(type).map((leaf) => ({ name: bundleTensorName(leaf.path), leaf }));
}

function containsSequence(t: TffType): boolean {
  if (t.kind === 'sequence') return true;
  return t.kind === 'struct' && t.fields.some((f) => containsSequence(f.type));
}

function shapeText(shape: readonly (number | null)[]): string {
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(',')}]`;
}

/**
 * Reads a bundle and checks it carries exactly `type`: every leaf present under its name with its dtype and
 * a shape the type accepts (`null` dims match any size), no extra tensors, and (by default) finite floats.
 * Returns the tensors in `tensorLeaves(type)` order; like `readBundle`, their data may view `bytes`.
 */
export function readTypedBundle(
  bytes: Uint8Array,
  type: TffType,
  options: TypedReadOptions = {},
): { metadata: Record<string, string>; tensors: BundleTensor[] } {
  const leaves = bundleLeaves(type);
  const contents = readBundle(bytes);
  const byName = new Map(contents.tensors.map((t) => [t.name, t]));
  const problems: ErrorDetail[] = [];
  const tensors: BundleTensor[] = [];
  for (const { name, leaf } of leaves) {
    const t = byName.get(name);
    byName.delete(name);
    const want = formatType(leaf.type);
    if (t === undefined) {
      problems.push({ path: name, message: `missing; expected ${want}` });
      continue;
    }
    if (t.dtype !== leaf.type.dtype) {
      problems.push({ path: name, message: `dtype ${t.dtype}, expected ${want}` });
    } else if (
      t.shape.length !== leaf.type.shape.length ||
      leaf.type.shape.some((d, i) => d !== null && d !== t.shape[i])
    ) {
      problems.push({ path: name, message: `shape ${shapeText(t.shape)}, expected ${want}` });
    }
    tensors.push(t);
  }
  for (const name of byName.keys()) {
    problems.push({ path: name, message: `not part of type ${formatType(type)}` });
  }
  if (problems.length > 0) {
    throw new AppError('BUNDLE_TYPE_MISMATCH', `bundle does not match type ${formatType(type)}`, problems);
  }

  if (options.requireFinite ?? true) {
    const notFinite: ErrorDetail[] = [];
    for (const t of tensors) {
      if (t.dtype !== 'float32') continue;
      const at = firstNonFinite(t.data as Float32Array);
      if (at >= 0) notFinite.push({ path: t.name, message: `element ${at} is ${t.data[at]}` });
    }
    if (notFinite.length > 0) {
      throw new AppError('BUNDLE_NOT_FINITE', 'bundle holds non-finite values', notFinite);
    }
  }
  return { metadata: contents.metadata, tensors };
}

/** Index of the first NaN or ±Infinity, or -1. */
export function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}
