/**
 * The handwritten digits data set (UCI optical digits, scikit-learn's copy; see data/README.md) for the demo,
 * the FedAvg tests and benchmarks, with McMahan-style non-IID client partitions. Node only (fs, zlib): import
 * it directly, never from browser code.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { AppError } from '../errors';
import { structType, tensorType, type StructType } from '../compute/types';
import type { ClientExamples } from './client-examples';
import { seededPermutation, type Seed } from './seeded';

/** Pixels per image (8x8). */
export const DIGITS_FEATURES = 64;
/** Labels 0..9. */
export const DIGITS_CLASSES = 10;
/** The largest raw pixel count; pixels are divided by it to land in 0..1. */
const PIXEL_MAX = 16;

/** Digits images and labels: `x` holds `n` rows of 64 pixels in 0..1, `y` the labels 0..9. */
export interface DigitsData {
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly n: number;
}

/**
 * The repository's `data/digits.csv.gz`, found by walking up from this file, since the compiled file sits at
 * a different depth (`dist/src/data`) than the source (`src/data`).
 */
export function defaultDigitsPath(): string {
  for (let dir = __dirname; ;) {
    const candidate = path.join(dir, 'data', 'digits.csv.gz');
    if (fs.existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`data/digits.csv.gz not found above ${__dirname}`);
    dir = parent;
  }
}

/** Loads the gzip-compressed digits CSV (1,797 rows of 64 pixel counts 0..16 and a label, no header). */
export function loadDigits(file: string = defaultDigitsPath()): DigitsData {
  return parseDigitsCsv(zlib.gunzipSync(fs.readFileSync(file)).toString('utf8'));
}

/** Parses the digits CSV text, scaling pixels by 1/16; throws DATA_INVALID naming the line and column. */
export function parseDigitsCsv(text: string): DigitsData {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const n = lines.length;
  const x = new Float32Array(n * DIGITS_FEATURES);
  const y = new Int32Array(n);
  lines.forEach((line, r) => {
    const cells = line.split(',');
    const where = (c: number) => `line ${r + 1}, column ${c + 1}`;
    if (cells.length !== DIGITS_FEATURES + 1) {
      throw new AppError('DATA_INVALID', 'invalid digits data', [
        { path: `line ${r + 1}`, message: `${cells.length} columns, expected ${DIGITS_FEATURES + 1}` },
      ]);
    }
    cells.forEach((cell, c) => {
      const v = Number(cell);
      const max = c < DIGITS_FEATURES ? PIXEL_MAX : DIGITS_CLASSES - 1;
      if (cell.trim() === '' || !Number.isInteger(v) || v < 0 || v > max) {
        throw new AppError('DATA_INVALID', 'invalid digits data', [
          { path: where(c), message: `${JSON.stringify(cell)} is not an integer in 0..${max}` },
        ]);
      }
      if (c < DIGITS_FEATURES) x[r * DIGITS_FEATURES + c] = v / PIXEL_MAX;
      else y[r] = v;
    });
  });
  return { x, y, n };
}

/** The examples at `indices`, in that order. */
export function subsetDigits(data: DigitsData, indices: ArrayLike<number>): DigitsData {
  const n = indices.length;
  const x = new Float32Array(n * DIGITS_FEATURES);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = indices[i]!;
    if (!Number.isInteger(j) || j < 0 || j >= data.n)
      throw new RangeError(`example index ${j} is not in 0..${data.n - 1}`);
    x.set(data.x.subarray(j * DIGITS_FEATURES, (j + 1) * DIGITS_FEATURES), i * DIGITS_FEATURES);
    y[i] = data.y[j]!;
  }
  return { x, y, n };
}

/**
 * Splits into train and test sets at random: `round(n * testFraction)` examples go to test. The same seed
 * gives the same split; each part keeps the original example order.
 */
export function trainTestSplit(
  data: DigitsData,
  testFraction = 0.2,
  seed: Seed = 0,
): { train: DigitsData; test: DigitsData } {
  if (!(testFraction >= 0 && testFraction <= 1))
    throw new RangeError(`testFraction ${testFraction} is not in 0..1`);
  const perm = seededPermutation(data.n, seed);
  const nTest = Math.round(data.n * testFraction);
  const test = perm.slice(0, nTest).sort();
  const train = perm.slice(nTest).sort();
  return { train: subsetDigits(data, train), test: subsetDigits(data, test) };
}

/**
 * McMahan et al.'s pathological non-IID partition: sort example indices by label, cut them into
 * `numClients * shardsPerClient` contiguous shards of equal size (sizes differ by at most one), and deal each
 * client `shardsPerClient` shards at random, so each client holds mostly `shardsPerClient` labels. Every
 * example goes to exactly one client. Returns example indices per client.
 */
export function partitionNonIid(
  labels: Int32Array,
  numClients: number,
  shardsPerClient = 2,
  seed: Seed = 0,
): number[][] {
  const n = labels.length;
  const numShards = numClients * shardsPerClient;
  if (
    !Number.isSafeInteger(numClients) ||
    numClients < 1 ||
    !Number.isSafeInteger(shardsPerClient) ||
    shardsPerClient < 1
  ) {
    throw new RangeError(
      `numClients (${numClients}) and shardsPerClient (${shardsPerClient}) must be positive integers`,
    );
  }
  if (numShards > n) throw new RangeError(`${numShards} shards cannot be cut from ${n} examples`);
  // Stable by index within a label, so the partition depends only on the labels and the seed.
  const byLabel = Array.from({ length: n }, (_, i) => i).sort((a, b) => labels[a]! - labels[b]! || a - b);
  const shardOrder = seededPermutation(numShards, seed);
  return Array.from({ length: numClients }, (_, c) => {
    const indices: number[] = [];
    for (let s = 0; s < shardsPerClient; s++) {
      const shard = shardOrder[c * shardsPerClient + s]!;
      const begin = Math.floor((shard * n) / numShards);
      const end = Math.floor(((shard + 1) * n) / numShards);
      indices.push(...byLabel.slice(begin, end));
    }
    return indices;
  });
}

/** The batch type of digits client data: `<x=float32[?,64], y=int32[?]>`. */
export function digitsElementType(): StructType {
  return structType([
    ['x', tensorType('float32', [null, DIGITS_FEATURES])],
    ['y', tensorType('int32', [null])],
  ]);
}

/** The examples at `indices` as one client's data for `digitsElementType()`. */
export function digitsClientExamples(data: DigitsData, indices: ArrayLike<number>): ClientExamples {
  const subset = subsetDigits(data, indices);
  return { count: subset.n, leaves: [subset.x, subset.y] };
}
