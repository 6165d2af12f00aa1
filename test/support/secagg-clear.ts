/**
 * Test support for test/secagg-privacy.test.ts: finding a client's secure-sum values in the clear in what a
 * server received or stored. A value is in the clear when it is a JSON number, a number written in a
 * string (a field `3:5`, a URL, a message), an element or a dimension of a bundle tensor, or the int32
 * little-endian bytes of the value anywhere in other binary data. And how far masked values may look like
 * their inputs: by chance, and in distribution (chi-square against the uniform law).
 */
import { readBundle, type BundleContents } from '../../src/codec';

/** The values to look for, each with a label naming whose value it is ("client 3's V1"). */
export type ClearValues = ReadonlyMap<number, string>;

/** Where the values show in the clear in `bytes` (a bundle, UTF-8 text or JSON, or other binary data). */
export function clearHits(bytes: Uint8Array, clear: ClearValues): string[] {
  const bundle = bundleOf(bytes);
  if (bundle) return bundleHits(bundle, clear);
  const text = utf8(bytes);
  return text === undefined ? rawHits(bytes, clear) : textHits(text, clear);
}

/** The bundle `bytes` hold, or undefined when they are not one. */
export function bundleOf(bytes: Uint8Array): BundleContents | undefined {
  try {
    return readBundle(bytes);
  } catch {
    return undefined;
  }
}

function utf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

const hit = (x: number, clear: ClearValues, how: string): string[] =>
  clear.has(x) ? [`${clear.get(x)!} (${x}) as ${how}`] : [];

function bundleHits(bundle: BundleContents, clear: ClearValues): string[] {
  return [
    ...Object.values(bundle.metadata).flatMap((v) => textHits(v, clear)),
    ...bundle.tensors.flatMap((t) => [
      ...t.shape.flatMap((d) => hit(d, clear, `a dimension of ${t.name}`)),
      ...(t.dtype === 'bool' ? [] : [...t.data].flatMap((x) => hit(x, clear, `an element of ${t.name}`))),
    ]),
  ];
}

function textHits(text: string, clear: ClearValues): string[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return wordHits(text, clear);
  }
  return jsonHits(json, clear);
}

function jsonHits(v: unknown, clear: ClearValues): string[] {
  if (typeof v === 'number') return hit(v, clear, 'a JSON number');
  if (typeof v === 'string') return /^[[{]/.test(v) ? textHits(v, clear) : wordHits(v, clear);
  if (Array.isArray(v)) return v.flatMap((x) => jsonHits(x, clear));
  if (v !== null && typeof v === 'object') {
    return Object.entries(v).flatMap(([k, x]) => [...wordHits(k, clear), ...jsonHits(x, clear)]);
  }
  return [];
}

/**
 * Numbers in a string: the words between anything but letters, digits, `_` and `-` (so `c.s`, `3:5`,
 * `1.1`, URLs and messages are searched, base64url is not cut up). Stack frames' line:column positions
 * are left out: they are the server's code, not data.
 */
function wordHits(text: string, clear: ClearValues): string[] {
  return text
    .replace(/:\d+:\d+/g, '')
    .split(/[^\w-]+/)
    .filter((w) => /^\d+$/.test(w))
    .flatMap((w) => hit(Number(w), clear, 'a number in text'));
}

/** The values' int32 little-endian bytes at any offset. */
function rawHits(bytes: Uint8Array, clear: ClearValues): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found: string[] = [];
  for (let at = 0; at + 4 <= bytes.length; at++) {
    found.push(...hit(view.getInt32(at, true), clear, `int32 bytes at offset ${at}`));
  }
  return found;
}

/**
 * The most of `n` independent values, each uniform in [0, m), that may equal fixed values by chance: more
 * happen with a probability below 1e-6. A masked value is such a draw, and equals its input 1 time in m.
 */
export function chanceBound(n: number, m: number): number {
  const p = 1 / m;
  let pmf = (1 - p) ** n;
  let above = 1 - pmf;
  for (let c = 0; c < n; c++) {
    if (above < 1e-6) return c;
    pmf = (pmf * (n - c) * p) / ((c + 1) * (1 - p));
    above -= pmf;
  }
  return n;
}

/** The 1% critical value of chi-square with df degrees of freedom (Wilson-Hilferty, close for df >= 10). */
export function chiSquareCritical(df: number): number {
  const z = 2.3263; // the 99th percentile of the standard normal
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

/** Pearson's chi-square of `values` in [0, m) against the uniform law, in `buckets` equal bins. */
export function chiSquare(values: readonly number[], m: number, buckets: number): number {
  const counts = new Array<number>(buckets).fill(0);
  for (const y of values) counts[Math.floor((y * buckets) / m)]! += 1;
  const expected = values.length / buckets;
  return counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
}
