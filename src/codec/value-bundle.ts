/**
 * Run-time values (tf tensors in structs) to and from tensor bundles, for the interpreter's inputs and
 * outputs: broadcasts, updates, server state. Built on the typed-array layer in `bundle.ts`.
 */
import * as tf from '@tensorflow/tfjs';
import { AppError } from '../errors';
import { formatType, type TffType } from '../compute/types';
import { isSequence, isStruct, isTensor, structValue, type Value } from '../compute/value';
import { writeBundle, type BundleData, type BundleTensor } from './bundle';
import { bundleTensorName, readTypedBundle, type TypedReadOptions } from './typed-bundle';

function mismatch(path: readonly string[], message: string): AppError {
  return new AppError('BUNDLE_TYPE_MISMATCH', 'value does not match its type', [
    { path: bundleTensorName(path), message },
  ]);
}

/**
 * A tensor's values as the typed array its dtype calls for. TensorFlow.js's CPU backend (the browsers'
 * fallback when WASM cannot load) keeps the input's array in Cast, so a float32 made from int32 or bool
 * comes back as an Int32Array or Uint8Array; the bundle layer wants a Float32Array for float32.
 */
export function tensorData(t: tf.Tensor): BundleData {
  const data = t.dataSync() as BundleData;
  switch (t.dtype) {
    case 'float32':
      return data instanceof Float32Array ? data : Float32Array.from(data);
    case 'int32':
      return data instanceof Int32Array ? data : Int32Array.from(data);
    default:
      return data;
  }
}

function kindOf(v: Value): string {
  if (isStruct(v)) return 'struct';
  if (isSequence(v)) return 'sequence';
  return `${v.dtype} tensor of shape [${v.shape.join(',')}]`;
}

function collect(value: Value, type: TffType, path: string[], out: BundleTensor[]): void {
  switch (type.kind) {
    case 'sequence':
      throw mismatch(path, `a sequence (${formatType(type)}) cannot travel in a tensor bundle`);
    case 'tensor': {
      if (!isTensor(value)) throw mismatch(path, `expected ${formatType(type)}, got a ${kindOf(value)}`);
      const fits =
        value.dtype === type.dtype &&
        value.rank === type.shape.length &&
        type.shape.every((d, i) => d === null || d === value.shape[i]);
      if (!fits) throw mismatch(path, `expected ${formatType(type)}, got a ${kindOf(value)}`);
      out.push({
        name: bundleTensorName(path),
        dtype: type.dtype,
        shape: value.shape,
        data: tensorData(value),
      });
      return;
    }
    case 'struct': {
      if (!isStruct(value)) throw mismatch(path, `expected ${formatType(type)}, got a ${kindOf(value)}`);
      if (value.fields.length !== type.fields.length) {
        throw mismatch(
          path,
          `expected ${type.fields.length} fields (${formatType(type)}), got ${value.fields.length}`,
        );
      }
      type.fields.forEach((f, i) => {
        const v = value.fields[i]!;
        if (f.name !== undefined && v.name !== undefined && v.name !== f.name) {
          throw mismatch(path, `field ${i} is named ${v.name}, expected ${f.name}`);
        }
        collect(v.value, f.type, [...path, f.name ?? String(i)], out);
      });
      return;
    }
  }
}

/**
 * Encodes a value of `type` as a safetensors bundle, each tensor named by its leaf path joined with "/"
 * (unnamed fields by index, a bare tensor as "value"); throws BUNDLE_TYPE_MISMATCH when the value does not
 * match the type or the type holds a sequence.
 */
export function encodeBundle(value: Value, type: TffType, metadata?: Record<string, string>): Uint8Array {
  const tensors: BundleTensor[] = [];
  collect(value, type, [], tensors);
  return writeBundle(tensors, metadata);
}

/**
 * Decodes a bundle that must carry exactly `type` into a value of tf tensors (the caller disposes them);
 * throws BUNDLE_MALFORMED, BUNDLE_TYPE_MISMATCH or BUNDLE_NOT_FINITE (unless `requireFinite` is false).
 */
export function decodeBundle(bytes: Uint8Array, type: TffType, options: TypedReadOptions = {}): Value {
  // Everything is validated before the first tensor exists, so a rejected bundle cannot leak tensors.
  const { tensors } = readTypedBundle(bytes, type, options);
  let next = 0;
  const build = (t: TffType): Value => {
    if (t.kind === 'struct') return structValue(t.fields.map((f) => [f.name, build(f.type)] as const));
    const b = tensors[next++]!;
    // Copy: the data may view `bytes`, and the CPU backend keeps the array it is given rather than copying.
    return tf.tensor(b.data.slice(), [...b.shape], b.dtype);
  };
  return build(type);
}
