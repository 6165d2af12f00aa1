/**
 * The tensor bundle wire format: safetensors, restricted to the dtypes of the IR. Layout:
 * an 8-byte little-endian u64 header length N; N bytes of UTF-8 JSON
 * `{"__metadata__": {..}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}, ...}` padded with
 * spaces; then the raw little-endian data, offsets relative to its start. Python's `safetensors` reads what
 * `writeBundle` writes and `readBundle` reads what it writes (for F32, I32 and BOOL tensors).
 *
 * This file works on typed arrays only (no tf, no Node APIs) so that aggregation workers and browsers can use it.
 */
import { AppError } from '../errors';
import type { Dtype } from '../compute/types';
import './endian';

/** The flat data of one tensor: float32 → Float32Array, int32 → Int32Array, bool → Uint8Array of 0/1. */
export type BundleData = Float32Array | Int32Array | Uint8Array;

/** One named tensor of a bundle, row-major. */
export interface BundleTensor {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: BundleData;
}

/** What a bundle holds: its string metadata and its tensors, in data-offset order. */
export interface BundleContents {
  readonly metadata: Record<string, string>;
  readonly tensors: BundleTensor[];
}

/** The header key safetensors reserves for string metadata; no tensor may be named so. */
export const METADATA_KEY = '__metadata__';

/** The largest header accepted, the same cap as the safetensors reference reader. */
export const MAX_HEADER_BYTES = 100_000_000;

const WIRE_DTYPE: Readonly<Record<Dtype, string>> = { float32: 'F32', int32: 'I32', bool: 'BOOL' };
const FROM_WIRE: ReadonlyMap<string, Dtype> = new Map([
  ['F32', 'float32'],
  ['I32', 'int32'],
  ['BOOL', 'bool'],
]);
const ITEM_BYTES: Readonly<Record<Dtype, number>> = { float32: 4, int32: 4, bool: 1 };
const TENSOR_INFO_KEYS = ['data_offsets', 'dtype', 'shape'];

function malformed(path: string, message: string): AppError {
  return new AppError('BUNDLE_MALFORMED', 'malformed tensor bundle', [{ path, message }]);
}

function badInput(path: string, message: string): AppError {
  return new AppError('BUNDLE_TYPE_MISMATCH', 'cannot write tensor bundle', [{ path, message }]);
}

function isSafeNonNegativeInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function dataMatchesDtype(data: BundleData, dtype: Dtype): boolean {
  switch (dtype) {
    case 'float32':
      return data instanceof Float32Array;
    case 'int32':
      return data instanceof Int32Array;
    case 'bool':
      return data instanceof Uint8Array;
  }
}

/** Index of the first byte that is neither 0 nor 1, or -1; bools are one byte each on the wire. */
function firstNonBoolean(data: Uint8Array): number {
  for (let i = 0; i < data.length; i++) if (data[i]! > 1) return i;
  return -1;
}

const encoder = new TextEncoder();

/**
 * Serialises tensors (and optional string metadata) as a safetensors bundle; float32 and int32 data is laid
 * out before bool data so that every 4-byte tensor starts 4-byte aligned and readers can view it without a copy.
 */
export function writeBundle(tensors: readonly BundleTensor[], metadata?: Record<string, string>): Uint8Array {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (typeof t.name !== 'string') throw badInput(String(t.name), 'tensor name must be a string');
    if (t.name === METADATA_KEY) throw badInput(t.name, `"${METADATA_KEY}" is reserved for metadata`);
    if (seen.has(t.name)) throw badInput(t.name, 'duplicate tensor name');
    seen.add(t.name);
    if (!Object.hasOwn(ITEM_BYTES, t.dtype)) throw badInput(t.name, `unsupported dtype ${String(t.dtype)}`);
    if (!t.shape.every((d) => isSafeNonNegativeInt(d))) {
      throw badInput(t.name, `shape [${t.shape.join(',')}] must hold non-negative integers`);
    }
    if (!dataMatchesDtype(t.data, t.dtype)) {
      throw badInput(
        t.name,
        `dtype ${t.dtype} needs its matching typed array, got ${t.data.constructor.name}`,
      );
    }
    if (t.data.length !== product(t.shape)) {
      throw badInput(t.name, `${t.data.length} values do not fill shape [${t.shape.join(',')}]`);
    }
    if (t.dtype === 'bool') {
      const at = firstNonBoolean(t.data as Uint8Array);
      if (at >= 0) throw badInput(t.name, `bool element ${at} is ${t.data[at]}, not 0 or 1`);
    }
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw badInput(METADATA_KEY, `metadata value of "${k}" is not a string`);
    }
  }

  // Stable: 4-byte tensors keep their order, then bools keep theirs.
  const ordered = [
    ...tensors.filter((t) => t.dtype !== 'bool'),
    ...tensors.filter((t) => t.dtype === 'bool'),
  ];
  // The header is assembled by hand, not with one JSON.stringify of an object, because JS objects put
  // integer-like keys ("0", "1" for unnamed fields) first and the header must list tensors in offset order.
  const parts: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const t of ordered) {
    const end = offset + t.data.byteLength;
    const info = { dtype: WIRE_DTYPE[t.dtype], shape: [...t.shape], data_offsets: [offset, end] };
    parts.push(`${JSON.stringify(t.name)}:${JSON.stringify(info)}`);
    offset = end;
  }
  const json = encoder.encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;

  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  // u64 little-endian as two u32 halves; headers never reach 4 GiB.
  view.setUint32(0, headerLength, true);
  view.setUint32(4, 0, true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const t of ordered) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

interface HeaderEntry {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: number[];
  readonly begin: number;
  readonly end: number;
}

function parseHeader(bytes: Uint8Array): {
  metadata: Record<string, string>;
  entries: HeaderEntry[];
  dataStart: number;
} {
  if (bytes.byteLength < 8) {
    throw malformed('header', `bundle is ${bytes.byteLength} bytes, shorter than its 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  if (high !== 0 || low > MAX_HEADER_BYTES) {
    const n = BigInt(high) * 2n ** 32n + BigInt(low);
    throw malformed('header', `header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  }
  if (8 + low > bytes.byteLength) {
    throw malformed(
      'header',
      `header length ${low} runs past the end of the ${bytes.byteLength}-byte bundle`,
    );
  }

  let text: string;
  try {
    // fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM keeps a BOM so that JSON.parse rejects it.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + low));
  } catch {
    throw malformed('header', 'header is not valid UTF-8');
  }
  // The safetensors reference reader demands this too, so a bundle we accept is one Python accepts.
  if (!text.startsWith('{')) throw malformed('header', 'header does not start with "{"');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw malformed('header', `header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(parsed)) throw malformed('header', 'header is not a JSON object');

  let metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, info] of Object.entries(parsed)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(info)) throw malformed(name, 'metadata is not an object');
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') throw malformed(name, `metadata value of "${k}" is not a string`);
      }
      // fromEntries defines own properties, so a "__proto__" key cannot change the prototype.
      metadata = Object.fromEntries(Object.entries(info as Record<string, string>));
      continue;
    }
    entries.push(parseEntry(name, info));
  }
  return { metadata, entries, dataStart: 8 + low };
}

/**
 * A short description of a header value for an error message. Never recursive and never long: a header
 * is untrusted, and echoing a value nested thousands deep would overflow the stack (a 500 instead of a 400)
 * and a huge one would bloat the answer.
 */
function preview(v: unknown): string {
  if (v === null || typeof v !== 'object') {
    const text = typeof v === 'string' ? JSON.stringify(v) : String(v);
    return text.length > 40 ? `${text.slice(0, 40)}…` : text;
  }
  if (Array.isArray(v)) {
    const flat = v.length <= 8 && v.every((x) => x === null || typeof x !== 'object');
    return flat ? `[${v.map(preview).join(',')}]` : `an array of ${v.length} items`;
  }
  return 'an object';
}

function parseEntry(name: string, info: unknown): HeaderEntry {
  if (!isPlainObject(info)) throw malformed(name, 'tensor info is not an object');
  const keys = Object.keys(info).sort();
  if (keys.length !== TENSOR_INFO_KEYS.length || keys.some((k, i) => k !== TENSOR_INFO_KEYS[i])) {
    throw malformed(
      name,
      `tensor info must have exactly dtype, shape and data_offsets (has ${keys.join(', ')})`,
    );
  }
  const wire = info.dtype;
  const dtype = typeof wire === 'string' ? FROM_WIRE.get(wire) : undefined;
  if (dtype === undefined) {
    throw malformed(name, `unknown dtype ${preview(wire)} (supported: ${[...FROM_WIRE.keys()].join(', ')})`);
  }
  const shape = info.shape;
  if (!Array.isArray(shape) || !shape.every(isSafeNonNegativeInt)) {
    throw malformed(name, `shape ${preview(shape)} is not a list of non-negative integers`);
  }
  const offsets = info.data_offsets;
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !isSafeNonNegativeInt(offsets[0]) ||
    !isSafeNonNegativeInt(offsets[1]) ||
    offsets[0] > offsets[1]
  ) {
    throw malformed(name, `data_offsets ${preview(offsets)} is not [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  const need = product(shape) * ITEM_BYTES[dtype];
  if (need !== end - begin) {
    throw malformed(
      name,
      `${end - begin} data bytes, but ${wire as string} with shape [${shape.join(',')}] needs ${need}`,
    );
  }
  return { name, dtype, shape: [...(shape as number[])], begin, end };
}

/**
 * Parses and validates a bundle into typed arrays without creating tf tensors. The arrays are zero-copy views
 * into `bytes` whenever the data is 4-byte aligned in memory (always so for bundles we write, unless `bytes`
 * itself starts unaligned): do not mutate `bytes` while they are in use, and copy what must outlive it.
 */
export function readBundle(bytes: Uint8Array): BundleContents {
  const { metadata, entries, dataStart } = parseHeader(bytes);
  const dataLength = bytes.byteLength - dataStart;
  for (const e of entries) {
    if (e.end > dataLength) {
      throw malformed(
        e.name,
        `data_offsets [${e.begin},${e.end}] run past the ${dataLength}-byte data section`,
      );
    }
  }

  // Tensors must tile the data section exactly, as the reference reader requires; this also defeats a
  // duplicated JSON key (JSON.parse keeps the last), since the dropped entry's bytes would be left uncovered.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous = '';
  for (const e of entries) {
    if (e.begin < cursor) {
      throw malformed(e.name, `data_offsets [${e.begin},${e.end}] overlap tensor "${previous}"`);
    }
    if (e.begin > cursor) {
      throw malformed(e.name, `data bytes [${cursor},${e.begin}) before this tensor belong to no tensor`);
    }
    cursor = e.end;
    previous = e.name;
  }
  if (cursor !== dataLength) {
    throw malformed('header', `data bytes [${cursor},${dataLength}) belong to no tensor`);
  }

  const tensors = entries.map((e): BundleTensor => {
    const start = bytes.byteOffset + dataStart + e.begin;
    const count = (e.end - e.begin) / ITEM_BYTES[e.dtype];
    let data: BundleData;
    if (e.dtype === 'bool') {
      data = new Uint8Array(bytes.buffer, start, count);
      const at = firstNonBoolean(data);
      if (at >= 0) throw malformed(e.name, `bool element ${at} is ${data[at]}, not 0 or 1`);
    } else {
      // A typed array view needs an aligned start; otherwise copy the bytes to a fresh (aligned) buffer.
      const aligned = start % 4 === 0;
      const buffer = aligned ? bytes.buffer : bytes.slice(dataStart + e.begin, dataStart + e.end).buffer;
      const offset = aligned ? start : 0;
      data =
        e.dtype === 'float32'
          ? new Float32Array(buffer, offset, count)
          : new Int32Array(buffer, offset, count);
    }
    return { name: e.name, dtype: e.dtype, shape: e.shape, data };
  });
  return { metadata, tensors };
}
