import type * as tf from '@tensorflow/tfjs';
import { isSequence, isStruct, type Value } from './value';

/** A JSON rendering of a value: numbers, booleans, nested arrays, and objects for named structs. */
export type JsonValue = number | boolean | JsonValue[] | { [name: string]: JsonValue };

/**
 * Renders a value as JSON for people and tools: a struct whose fields are all named becomes an object,
 * any other struct an array; tensors become (nested arrays of) numbers or booleans. For round outputs and
 * metrics, which are small; tensors on hot paths travel as bundles instead.
 */
export function valueToJson(v: Value): JsonValue {
  if (isStruct(v)) {
    if (v.fields.length > 0 && v.fields.every((f) => f.name)) {
      return Object.fromEntries(v.fields.map((f) => [f.name!, valueToJson(f.value)]));
    }
    return v.fields.map((f) => valueToJson(f.value));
  }
  if (isSequence(v)) return v.elements.map(valueToJson);
  const t = v as tf.Tensor;
  const data = t.arraySync() as JsonValue;
  return t.dtype === 'bool' ? toBool(data) : data;
}

function toBool(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(toBool);
  return typeof v === 'number' ? v !== 0 : v;
}
