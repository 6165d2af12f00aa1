import type { Dtype, SequenceType, StructType, TensorType, TffType } from '../generated/type';

export type { Dtype, SequenceType, StructField, StructType, TensorType, TffType } from '../generated/type';

/** A tensor shape; `null` is a dimension unknown until run time (usually the batch dimension). */
export type Shape = readonly (number | null)[];

/** Builds a tensor type. */
export function tensorType(dtype: Dtype, shape: Shape): TensorType {
  return { kind: 'tensor', dtype, shape: [...shape] };
}

/** Builds a struct type from `[name, type]` pairs; an empty or undefined name leaves the field unnamed. */
export function structType(fields: readonly (readonly [string | undefined, TffType])[]): StructType {
  return { kind: 'struct', fields: fields.map(([name, type]) => (name ? { name, type } : { type })) };
}

/** Builds a sequence type. */
export function sequenceType(element: TffType): SequenceType {
  return { kind: 'sequence', element };
}

/** The empty struct `<>`, TFF's unit. */
export const EMPTY_STRUCT: StructType = Object.freeze({ kind: 'struct', fields: [] }) as StructType;

/** Whether every dimension is known. */
export function isFullyDefined(shape: Shape): shape is readonly number[] {
  return shape.every((d) => d !== null);
}

/** The number of elements of a fully defined shape, or null. */
export function numElements(shape: Shape): number | null {
  let n = 1;
  for (const d of shape) {
    if (d === null) return null;
    n *= d;
  }
  return n;
}

/** TFF-style type text, e.g. `<x=float32[?,64],y=int32[?]>*` for a sequence of structs. */
export function formatType(t: TffType): string {
  switch (t.kind) {
    case 'tensor':
      return t.shape.length === 0
        ? t.dtype
        : `${t.dtype}[${t.shape.map((d) => (d === null ? '?' : d)).join(',')}]`;
    case 'struct':
      return `<${t.fields.map((f) => (f.name ? `${f.name}=${formatType(f.type)}` : formatType(f.type))).join(',')}>`;
    case 'sequence':
      return `${formatType(t.element)}*`;
  }
}

/**
 * Why a value of type `from` cannot fill a slot of type `to` (TFF's `is_assignable_from`), or null when it
 * can. The reason names the path inside the type, e.g. `field weights.0: dtype int32 is not float32`.
 */
export function assignabilityError(to: TffType, from: TffType, path = ''): string | null {
  const at = path ? ` at ${path}` : '';
  if (to.kind !== from.kind) return `expected ${formatType(to)}, got ${formatType(from)}${at}`;
  if (to.kind === 'tensor' && from.kind === 'tensor') {
    if (to.dtype !== from.dtype) return `dtype ${from.dtype} is not ${to.dtype}${at}`;
    if (to.shape.length !== from.shape.length) {
      return `shape ${formatType(from)} does not match ${formatType(to)} (rank ${from.shape.length} vs ${to.shape.length})${at}`;
    }
    for (let i = 0; i < to.shape.length; i++) {
      const want = to.shape[i];
      if (want !== null && want !== from.shape[i]) {
        return `shape ${formatType(from)} does not match ${formatType(to)} (dimension ${i})${at}`;
      }
    }
    return null;
  }
  if (to.kind === 'struct' && from.kind === 'struct') {
    if (to.fields.length !== from.fields.length) {
      return `struct with ${from.fields.length} fields is not ${formatType(to)} (${to.fields.length} fields)${at}`;
    }
    for (let i = 0; i < to.fields.length; i++) {
      const tf = to.fields[i]!;
      const ff = from.fields[i]!;
      const label = tf.name ?? String(i);
      if (tf.name && ff.name && tf.name !== ff.name)
        return `field ${i} is named ${ff.name}, expected ${tf.name}${at}`;
      const inner = assignabilityError(tf.type, ff.type, path ? `${path}.${label}` : label);
      if (inner) return inner;
    }
    return null;
  }
  if (to.kind === 'sequence' && from.kind === 'sequence') {
    return assignabilityError(to.element, from.element, path ? `${path}.*` : '*');
  }
  return `expected ${formatType(to)}, got ${formatType(from)}${at}`;
}

/** Whether a value of type `from` can fill a slot of type `to`. */
export function isAssignable(to: TffType, from: TffType): boolean {
  return assignabilityError(to, from) === null;
}

/** Structural equality of types (names, dtypes, shapes). */
export function typesEqual(a: TffType, b: TffType): boolean {
  return isAssignable(a, b) && isAssignable(b, a);
}

/** One tensor inside a type, with its path of field names (or indices for unnamed fields). */
export interface TensorLeaf {
  readonly path: readonly string[];
  readonly type: TensorType;
}

/**
 * The tensors of a struct-of-tensors type in depth-first field order; throws on sequences, which have no
 * fixed set of tensors. The order is the wire order of bundles and of secure-sum parameters.
 */
export function tensorLeaves(t: TffType, prefix: readonly string[] = []): TensorLeaf[] {
  switch (t.kind) {
    case 'tensor':
      return [{ path: prefix, type: t }];
    case 'struct':
      return t.fields.flatMap((f, i) => tensorLeaves(f.type, [...prefix, f.name ?? String(i)]));
    case 'sequence':
      throw new Error(`a sequence ${formatType(t)} has no fixed tensors`);
  }
}

/**
 * The deepest nesting of structs and sequences a type may have (a tensor is depth 1, `<x=float32>` depth 2).
 * Types are walked recursively everywhere (formatting, assignability, bundles), so the depth is bounded
 * once, when a plan is checked; real models nest a handful of levels.
 */
export const MAX_TYPE_DEPTH = 16;

/** A problem inside a type, at a JSON pointer relative to the type (`/fields/1/type`). */
export interface TypeProblem {
  readonly pointer: string;
  readonly message: string;
}

/**
 * Why a type is not well formed, or null: it nests deeper than `maxDepth`, or a struct names two fields
 * alike (TFF's named tuples have unique names; a `field` by that name would be ambiguous). Stops descending
 * at `maxDepth`, so it is safe on a type of any depth.
 */
export function typeProblem(t: TffType, maxDepth = MAX_TYPE_DEPTH): TypeProblem | null {
  const walk = (u: TffType, depth: number, pointer: string): TypeProblem | null => {
    if (depth > maxDepth) {
      return { pointer, message: `the type nests deeper than ${maxDepth} levels, the limit` };
    }
    if (u.kind === 'sequence') return walk(u.element, depth + 1, `${pointer}/element`);
    if (u.kind === 'tensor') return null;
    const seen = new Set<string>();
    for (let i = 0; i < u.fields.length; i++) {
      const f = u.fields[i]!;
      if (f.name !== undefined) {
        if (seen.has(f.name)) {
          return { pointer: `${pointer}/fields/${i}/name`, message: `field name "${f.name}" is used twice` };
        }
        seen.add(f.name);
      }
      const inner = walk(f.type, depth + 1, `${pointer}/fields/${i}/type`);
      if (inner) return inner;
    }
    return null;
  };
  return walk(t, 1, '');
}

/** The type signature of a computation: `(parameter -> result)`. */
export interface Signature {
  readonly parameter?: TffType;
  readonly result: TffType;
}

/** The int32 range, for every check of an int32 value (data ranges, bounds, constants, overflow). */
export const INT32_MIN = -2147483648;
export const INT32_MAX = 2147483647;

/** Whether a number is an int32 value. */
export function isInt32(v: number): boolean {
  return Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX;
}
