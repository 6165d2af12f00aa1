/**
 * Writes the bodies bundle-damage.ts draws. Bundles are written by hand, not with the codec, so that every
 * field of the header can be wrong.
 */
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { bundleLeaves } from '../../../src/codec';
import { mulberry32 } from '../../../src/compute/shuffle';
import type { TffType } from '../../../src/compute/types';
import type { BodySpec, EncodingSpec, Fill } from './bundle-damage';
import { applyMutation, Doc, type Json } from './json-mutate';

const WIRE: Record<string, string> = { float32: 'F32', int32: 'I32', bool: 'BOOL' };

/** A deterministic pseudo-random stream, for filling tensors from a drawn seed. */
const rng = mulberry32;

function fillValue(fill: Fill, dtype: string, r: () => number): number {
  if (dtype === 'bool') return fill === 'max' ? 2 : r() < 0.5 ? 0 : 1;
  const int = dtype === 'int32';
  switch (fill) {
    case 'small':
      return Math.floor(r() * 10);
    case 'zero':
      return 0;
    case 'max':
      return int ? 2 ** 31 - 1 : 3.4e38;
    case 'min':
      return int ? -(2 ** 31) : -3.4e38;
    case 'huge':
      return int ? 2 ** 30 : 1e30;
    case 'nan':
      return int ? 0 : NaN;
    case 'inf':
      return int ? 2 ** 31 - 1 : Infinity;
    case '-inf':
      return int ? -(2 ** 31) : -Infinity;
    case 'denormal':
      return int ? 1 : 1e-45;
    case 'random':
      return int ? Math.floor((r() - 0.5) * 2 ** 32) : (r() - 0.5) * 2 ** (Math.floor(r() * 256) - 128);
    case 'negative':
      return -1 - Math.floor(r() * 100);
  }
}

interface RawTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

/** The tensors of a bundle of `type`, unknown dimensions sized `dims`, filled as `fill` says. */
function tensorsFor(type: TffType, fill: Fill, dims: number, seed: number): RawTensor[] {
  const r = rng(seed);
  return bundleLeaves(type).map(({ name, leaf }) => {
    const shape = leaf.type.shape.map((d) => (d === null ? dims : d));
    const n = shape.reduce((a, b) => a * b, 1);
    const dtype = leaf.type.dtype;
    const data =
      dtype === 'float32' ? new Float32Array(n) : dtype === 'int32' ? new Int32Array(n) : new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = fillValue(fill, dtype, r);
    return { name, dtype: WIRE[dtype]!, shape, bytes: new Uint8Array(data.buffer) };
  });
}

/** Header entries in offset order, and the data they describe. */
function layout(tensors: RawTensor[], metadata?: Json): { entries: [string, Json][]; data: Uint8Array } {
  const entries: [string, Json][] = [];
  if (metadata !== undefined) entries.push(['__metadata__', metadata]);
  let offset = 0;
  for (const t of tensors) {
    entries.push([
      t.name,
      { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] },
    ]);
    offset += t.bytes.length;
  }
  const data = new Uint8Array(offset);
  offset = 0;
  for (const t of tensors) {
    data.set(t.bytes, offset);
    offset += t.bytes.length;
  }
  return { entries, data };
}

/** Writes header text and data as a safetensors file; `claim` overrides the header length field. */
function frame(headerText: string, data: Uint8Array, claim?: bigint): Uint8Array {
  const json = Buffer.from(headerText, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + data.length);
  new DataView(out.buffer).setBigUint64(0, claim ?? BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  out.set(data, 8 + padded);
  return out;
}

function headerText(entries: unknown, doc?: Doc): string {
  // A mutation may have replaced the whole entry list: then the header is whatever JSON it became.
  const text = Array.isArray(entries)
    ? `{${entries
        .map((e: unknown) =>
          Array.isArray(e) && typeof e[0] === 'string'
            ? `${JSON.stringify(e[0])}:${JSON.stringify(e[1] ?? null)}`
            : `${JSON.stringify(JSON.stringify(e ?? null))}:${JSON.stringify(e ?? null)}`,
        )
        .join(',')}}`
    : (JSON.stringify(entries) ?? 'null');
  return doc ? doc.splice(text) : text;
}

/** The bytes of a drawn body for a plan whose upload type is `type`. */
export function body(spec: BodySpec, type: TffType): Uint8Array {
  const valid = (fill: Fill = 'small', dims = 2, seed = 1) => layout(tensorsFor(type, fill, dims, seed));
  switch (spec.kind) {
    case 'valid': {
      const { entries, data } = valid(spec.fill, spec.dims, spec.seed);
      return frame(headerText(entries), data);
    }
    case 'typed': {
      const tensors = tensorsFor(type, 'small', 2, spec.pick);
      const t = tensors[spec.pick % Math.max(1, tensors.length)];
      let metadata: Json | undefined;
      const extra: [string, Json][] = [];
      switch (spec.change) {
        case 'dtype':
          if (t) t.dtype = spec.to as string;
          break;
        case 'shape':
          if (t) t.shape = spec.to as number[];
          break;
        case 'rename':
          if (t) t.name = typeof spec.to === 'string' ? spec.to : JSON.stringify(spec.to);
          break;
        case 'drop':
          if (t) tensors.splice(tensors.indexOf(t), 1);
          break;
        case 'extra':
          tensors.push({
            name: typeof spec.to === 'string' ? spec.to : 'extra',
            dtype: 'F32',
            shape: [1],
            bytes: new Uint8Array(4),
          });
          break;
        case 'dup-name':
          if (t) extra.push([t.name, { dtype: t.dtype, shape: t.shape, data_offsets: [0, t.bytes.length] }]);
          break;
        case 'metadata':
          metadata = spec.to;
          break;
      }
      const { entries, data } = layout(tensors, metadata);
      return frame(headerText([...entries, ...extra]), data);
    }
    case 'header': {
      const { entries, data } = valid();
      const doc = new Doc(entries as unknown as Json);
      for (const m of spec.mutations) applyMutation(doc, m);
      return frame(headerText(doc.root, doc), data);
    }
    case 'header-length': {
      const { entries, data } = valid();
      return frame(headerText(entries), data, spec.claim);
    }
    case 'truncate': {
      const whole = body({ kind: 'valid', fill: 'small', dims: 2, seed: 1 }, type);
      return whole.subarray(0, Math.floor(spec.at * whole.length));
    }
    case 'append': {
      const whole = body({ kind: 'valid', fill: 'small', dims: 2, seed: 1 }, type);
      return Buffer.concat([whole, spec.bytes]);
    }
    case 'random':
      return spec.bytes;
    case 'empty':
      return new Uint8Array(0);
    case 'huge-claim': {
      const tensors = tensorsFor(type, 'small', 2, 1);
      const { entries, data } = layout(tensors);
      const first = entries[0];
      if (first) first[1] = { dtype: 'F32', shape: [spec.elements], data_offsets: [0, spec.elements * 4] };
      return frame(headerText(entries), data);
    }
    case 'oversize':
      return new Uint8Array(65 * 1024 * 1024);
  }
}

let bomb: Uint8Array | undefined;
/** 80 MiB of zeros, gzipped to about 80 KiB: more than MAX_UPLOAD_BYTES once inflated. */
function gzipBomb(): Uint8Array {
  return (bomb ??= gzipSync(Buffer.alloc(80 * 1024 * 1024), { level: 9 }));
}

/** Encodes bytes as drawn; `header` is the Content-Encoding to send, if any. */
export function encode(encoding: EncodingSpec, bytes: Uint8Array): { bytes: Uint8Array; header?: string } {
  switch (encoding) {
    case 'none':
      return { bytes };
    case 'identity':
      return { bytes, header: 'identity' };
    case 'gzip':
      return { bytes: gzipSync(bytes), header: 'gzip' };
    case 'deflate':
      return { bytes: deflateSync(bytes), header: 'deflate' };
    case 'br':
      return { bytes: brotliCompressSync(bytes), header: 'br' };
    case 'gzip-corrupt': {
      const z = Buffer.from(gzipSync(bytes));
      const mid = Math.floor(z.length / 2);
      z[mid] = z[mid]! ^ 0xff;
      return { bytes: z.subarray(0, Math.max(10, z.length - 3)), header: 'gzip' };
    }
    case 'bomb':
      return { bytes: gzipBomb(), header: 'gzip' };
    case 'unknown':
      return { bytes, header: 'zstd' };
    case 'double-gzip':
      return { bytes: gzipSync(gzipSync(bytes)), header: 'gzip, gzip' };
  }
}
