import type { Dtype, Shape, TensorType } from '../types';
import { formatType, tensorType } from '../types';
import { OpError, type KernelContext } from './op';

/** The highest rank a tensor type may have (the `maxItems` of a shape in schemas/type.schema.json). */
export const MAX_RANK = 8;

/** Every dtype; for ops that take any. */
export const ANY_DTYPE: readonly Dtype[] = ['float32', 'int32', 'bool'];

/** The dtypes arithmetic is defined on. */
export const NUMERIC: readonly Dtype[] = ['float32', 'int32'];

/** Only float32; for ops with no integer meaning (exp, div) or no integer kernel. */
export const FLOAT: readonly Dtype[] = ['float32'];

/** The attrs schema of an op that takes none. */
export const NO_ATTRS = { type: 'object', additionalProperties: false, properties: {} } as const;

/** The schema of an `axis` attr (range checked by `normalizeAxis`, which knows the rank). */
export const AXIS_SCHEMA = { type: 'integer' } as const;

/** The schema of an `axes` attr. */
export const AXES_SCHEMA = { type: 'array', items: { type: 'integer' }, maxItems: MAX_RANK } as const;

/** The schema of a dtype attr. */
export const DTYPE_SCHEMA = { enum: ['float32', 'int32', 'bool'] } as const;

/** The schema of a static shape attr (no unknown dimensions). */
export const STATIC_SHAPE_SCHEMA = {
  type: 'array',
  items: { type: 'integer', minimum: 0 },
  maxItems: MAX_RANK,
} as const;

/** Shape text as in `formatType`, e.g. `[?,64]`. */
export function shapeText(shape: Shape): string {
  return `[${shape.map((d) => (d === null ? '?' : d)).join(',')}]`;
}

/** Arg `i`; throws when the caller passed too few (the checker checks arity first, so this is a guard). */
export function argAt<T>(args: readonly T[], i: number): T {
  const a = args[i];
  if (a === undefined) throw new OpError(`arg ${i}: missing (got ${args.length} args)`);
  return a;
}

function dtypeList(allowed: readonly Dtype[]): string {
  return allowed.length === 1
    ? allowed[0]!
    : `${allowed.slice(0, -1).join(', ')} or ${allowed[allowed.length - 1]}`;
}

/** Arg `i`, after checking that its dtype is one of `allowed`: "arg 1: dtype int32 is not float32". */
export function checkDtype(args: readonly TensorType[], i: number, allowed: readonly Dtype[]): TensorType {
  const t = argAt(args, i);
  if (!allowed.includes(t.dtype))
    throw new OpError(`arg ${i}: dtype ${t.dtype} is not ${dtypeList(allowed)}`);
  return t;
}

/** Checks that args `from..` share arg `from`'s dtype; ops never promote, plans `cast` instead. */
export function checkSameDtype(args: readonly TensorType[], from = 0, to = args.length): Dtype {
  const first = argAt(args, from);
  for (let i = from + 1; i < to; i++) {
    const t = argAt(args, i);
    if (t.dtype !== first.dtype) {
      throw new OpError(
        `arg ${i}: dtype ${t.dtype} is not ${first.dtype} (the dtype of arg ${from}; use cast)`,
      );
    }
  }
  return first.dtype;
}

/**
 * Unifies two dimensions that must be equal: an unknown one takes the other's value. Returns undefined when
 * both are known and differ.
 */
export function unifyDim(a: number | null, b: number | null): number | null | undefined {
  if (a === null) return b;
  if (b === null || a === b) return a;
  return undefined;
}

/**
 * NumPy broadcasting of the args' shapes, aligned from the last dimension. A known dimension other than 1
 * wins; an unknown one against 1 or unknown stays unknown, since at run time it may be either.
 */
export function broadcastShapes(
  shapes: readonly Shape[],
  labels: readonly number[] = shapes.map((_, i) => i),
): Shape {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: (number | null)[] = [];
  for (let k = 0; k < rank; k++) {
    let known: number | null = null;
    let knownFrom = -1;
    let anyUnknown = false;
    shapes.forEach((s, i) => {
      const d = s[s.length - rank + k];
      if (d === undefined || d === 1) return;
      if (d === null) {
        anyUnknown = true;
      } else if (known === null) {
        known = d;
        knownFrom = i;
      } else if (d !== known) {
        throw new OpError(
          `arg ${labels[i]}: shape ${shapeText(s)} does not broadcast with arg ${labels[knownFrom]}'s ` +
            `${shapeText(shapes[knownFrom]!)} (${d} vs ${known} in dimension ${k - rank})`,
        );
      }
    });
    out.push(known ?? (anyUnknown ? null : 1));
  }
  return out;
}

/** Broadcasts the actual shapes of a kernel's inputs and checks the result against the element limit. */
export function runtimeBroadcast(shapes: readonly (readonly number[])[], ctx: KernelContext): number[] {
  const out = broadcastShapes(shapes) as number[];
  checkElements(out, ctx);
  return out;
}

/**
 * Thrown by a kernel whose result would have more than `maxTensorElements` elements: a resource limit the
 * plan hit, not a bug in it, so interpreters can report it as such.
 */
export class OpLimitError extends OpError {
  constructor(message: string) {
    super(message);
    this.name = 'OpLimitError';
  }
}

/**
 * Throws OpLimitError before a kernel allocates a result over the limit (unknown dims can be huge at run
 * time); the message reads like the interpreter's own check of results.
 */
export function checkElements(shape: readonly number[], ctx: KernelContext): void {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n > ctx.maxTensorElements) {
    throw new OpLimitError(
      `result has ${n} elements, more than the limit of ${ctx.maxTensorElements} (shape ${shapeText(shape)})`,
    );
  }
}

/**
 * An axis in `[-rank, rank)` as a non-negative index; `attr` names the attribute in the error. Ops that add
 * an axis (expand_dims, stack) pass rank + 1.
 */
export function normalizeAxis(axis: number, rank: number, attr = 'axis'): number {
  if (axis < -rank || axis >= rank) {
    const range = rank === 0 ? '(a scalar has no axes)' : `${-rank}..${rank - 1}`;
    throw new OpError(`attr ${attr}: axis ${axis} is out of range ${range}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Distinct axes in range, sorted; undefined means all axes (the reductions' default). */
export function normalizeAxes(axes: readonly number[] | undefined, rank: number, attr = 'axes'): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const out = axes.map((a) => normalizeAxis(a, rank, attr));
  const dup = out.find((a, i) => out.indexOf(a) !== i);
  if (dup !== undefined) throw new OpError(`attr ${attr}: axis ${dup} is given more than once`);
  return out.sort((a, b) => a - b);
}

/** A result type, refusing ranks the type schema cannot hold (expand_dims, stack and one_hot add axes). */
export function result(dtype: Dtype, shape: Shape): TensorType {
  if (shape.length > MAX_RANK) {
    throw new OpError(
      `result ${formatType(tensorType(dtype, shape))} has rank ${shape.length}, more than ${MAX_RANK}`,
    );
  }
  return tensorType(dtype, shape);
}

/** The product of known dims, for element-count checks. */
export function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Dimension `i` of a static shape (null when unknown); `!` would also erase the null from the type. */
export function dimAt(shape: Shape, i: number): number | null {
  const d = shape[i];
  if (d === undefined) throw new OpError(`dimension ${i} is out of range for ${shapeText(shape)}`);
  return d;
}
