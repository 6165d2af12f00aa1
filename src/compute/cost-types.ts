import { product } from './ops/shape-infer';
import { typesEqual, type Dtype, type TffType } from './types';

/**
 * What the static cost model does with types: the shapes a value really has at run time (a callee sees its
 * caller's shapes, not its own declared unknowns), sizes in bytes, and the shape a loop state can reach.
 */

/** Bytes per element as tfjs stores them (bool is a Uint8Array). */
const DTYPE_BYTES: Readonly<Record<Dtype, number>> = { float32: 4, int32: 4, bool: 1 };

/** The type with every unknown dimension replaced by `n` (the cost model's assumption, docs/ir.md). */
export function fillUnknown(t: TffType, n: number): TffType {
  switch (t.kind) {
    case 'tensor':
      return { ...t, shape: t.shape.map((d) => d ?? n) };
    case 'struct':
      return { ...t, fields: t.fields.map((f) => ({ ...f, type: fillUnknown(f.type, n) })) };
    case 'sequence':
      return { ...t, element: fillUnknown(t.element, n) };
  }
}

/**
 * The type a computation declaring `declared` sees when given a value of type `actual` (which the checker
 * found assignable): the declared structure and field names (`conform` renames fields), the actual shapes
 * wherever the declaration leaves a dimension unknown.
 */
export function conformType(declared: TffType, actual: TffType): TffType {
  if (declared.kind === 'tensor' && actual.kind === 'tensor') {
    return { ...declared, shape: declared.shape.map((d, i) => d ?? actual.shape[i] ?? null) };
  }
  if (declared.kind === 'struct' && actual.kind === 'struct') {
    return {
      ...declared,
      fields: declared.fields.map((f, i) => {
        const a = actual.fields[i];
        return { ...f, type: a ? conformType(f.type, a.type) : f.type };
      }),
    };
  }
  if (declared.kind === 'sequence' && actual.kind === 'sequence') {
    return { ...declared, element: conformType(declared.element, actual.element) };
  }
  return declared;
}

/**
 * Bytes of the tensors a value of type `t` holds. Sequences count nothing: no op creates one, so a sequence
 * inside a node's result is always the caller's data passed along, never a new allocation.
 */
export function bytesOf(t: TffType, unknown: number): number {
  switch (t.kind) {
    case 'tensor':
      return product(t.shape.map((d) => d ?? unknown)) * DTYPE_BYTES[t.dtype];
    case 'struct':
      return t.fields.reduce((n, f) => n + bytesOf(f.type, unknown), 0);
    case 'sequence':
      return 0;
  }
}

/**
 * The loop state a loop may reach when its body returns other shapes than it was given (the declared state
 * leaves those dimensions unknown, so it may grow every step): each tensor whose shape changes is taken as
 * large as the run-time per-tensor limit allows, since nothing else bounds it.
 */
export function widenState(state: TffType, next: TffType, maxElements: number): TffType {
  if (state.kind === 'tensor' && next.kind === 'tensor') {
    if (typesEqual(state, next)) return state;
    const kept = state.shape.map((d, i) => (d === next.shape[i] ? d : null));
    const fixed = product(kept.map((d) => d ?? 1));
    let first = true;
    const shape = kept.map((d) => {
      if (d !== null) return d;
      const grown = first ? Math.max(1, Math.floor(maxElements / Math.max(1, fixed))) : 1;
      first = false;
      return grown;
    });
    return { ...state, shape };
  }
  if (state.kind === 'struct' && next.kind === 'struct') {
    return {
      ...state,
      fields: state.fields.map((f, i) => {
        const n = next.fields[i];
        return { ...f, type: n ? widenState(f.type, n.type, maxElements) : f.type };
      }),
    };
  }
  return state;
}

/** A key that identifies a type, to memoise per-type estimates. */
export function typeKey(t: TffType | undefined): string {
  return t === undefined ? '-' : JSON.stringify(t);
}
