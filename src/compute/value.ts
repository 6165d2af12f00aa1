import type * as tf from '@tensorflow/tfjs';

/**
 * A run-time value of the IR: a tensor, a struct (TFF named tuple) or a sequence of values (a client's
 * batches). Structs and sequences are plain objects so that `tf.tidy` can find the tensors inside them.
 */
export type Value = tf.Tensor | StructValue | SequenceValue;

/** A field of a struct value. */
export interface StructValueField {
  readonly name?: string;
  readonly value: Value;
}

/** A struct value. */
export interface StructValue {
  readonly kind: 'struct';
  readonly fields: readonly StructValueField[];
}

/** A sequence value; elements are materialised because clients hold small data and folds are sync. */
export interface SequenceValue {
  readonly kind: 'sequence';
  readonly elements: readonly Value[];
}

/** Builds a struct value from `[name, value]` pairs; an undefined name leaves the field unnamed. */
export function structValue(fields: readonly (readonly [string | undefined, Value])[]): StructValue {
  return { kind: 'struct', fields: fields.map(([name, value]) => (name ? { name, value } : { value })) };
}

/** Builds a sequence value. */
export function sequenceValue(elements: readonly Value[]): SequenceValue {
  return { kind: 'sequence', elements };
}

/** Whether a value is a struct. */
export function isStruct(v: Value): v is StructValue {
  return (v as StructValue).kind === 'struct';
}

/** Whether a value is a sequence. */
export function isSequence(v: Value): v is SequenceValue {
  return (v as SequenceValue).kind === 'sequence';
}

/** Whether a value is a tensor. */
export function isTensor(v: Value): v is tf.Tensor {
  return !isStruct(v) && !isSequence(v);
}

/** Every tensor inside a value, depth first. */
export function tensorsOf(v: Value, out: tf.Tensor[] = []): tf.Tensor[] {
  if (isStruct(v)) for (const f of v.fields) tensorsOf(f.value, out);
  else if (isSequence(v)) for (const e of v.elements) tensorsOf(e, out);
  else out.push(v);
  return out;
}

/** Disposes every tensor inside a value. */
export function disposeValue(v: Value): void {
  for (const t of tensorsOf(v)) t.dispose();
}
