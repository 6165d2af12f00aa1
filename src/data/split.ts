/**
 * `roundhouse data split`: turns one table of labelled examples (a CSV of one's own) into the client and
 * held-out CSVs that `run-local` and `simulate` read, for the `<x=float32[?,F], y=int32[?]>` element that
 * `plans build fedavg --layers F,...,K` trains on. Seeded throughout, so a split repeats exactly.
 */
import { parse } from 'csv-parse/sync';
import { structType, tensorType, type StructType } from '../compute/types';
import { AppError, type ErrorDetail } from '../errors';
import type { ClientExamples } from './client-examples';
import { writeClientsCsv } from './clients-csv';
import { partitionNonIid } from './digits';
import { seededPermutation, type Seed } from './seeded';

/** Options of {@link splitTable}. */
export interface SplitOptions {
  /** The label column's name. */
  readonly label: string;
  /** Classes (K): labels must be 0..K-1, or at most K distinct values; default: as many as there are. */
  readonly classes?: number;
  /** Clients to deal the training examples to. */
  readonly clients: number;
  /** Fraction of each class held out (stratified). */
  readonly holdout: number;
  /** Label shards per client (McMahan's non-IID partition); default IID (a seeded shuffle dealt round-robin). */
  readonly nonIid?: number;
  /** Scale every feature to mean 0 and standard deviation 1 over the training examples. */
  readonly standardize?: boolean;
  readonly seed?: Seed;
}

/** How the features were scaled and the labels numbered: what a model trained on the split expects. */
export interface SplitScaling {
  readonly label: string;
  /** The label values as they appear in the file, by class index. */
  readonly classes: string[];
  readonly features: string[];
  readonly standardized: boolean;
  /** Per feature, subtracted before dividing by `std` (0 and 1 when not standardized). */
  readonly mean: number[];
  readonly std: number[];
}

/** The CSV texts and the scaling of a split. */
export interface Split {
  readonly clientsCsv: string;
  /** One client, without the `client_id` column (`run-local --eval-data` reads it as such). */
  readonly heldoutCsv: string;
  readonly scaling: SplitScaling;
  readonly element: StructType;
  readonly counts: { readonly train: number; readonly heldout: number; readonly perClient: number[] };
}

const MAX_PROBLEMS = 20;

/**
 * Splits CSV `text` (a header, then one example per row: numeric feature columns and a label column) into
 * clients and a held-out set. Throws DATA_INVALID naming the file (`source`), the row (its line) and the
 * column of each problem.
 */
export function splitTable(text: string, source: string, o: SplitOptions): Split {
  const fail = (details: readonly ErrorDetail[]): never => {
    throw new AppError(
      'DATA_INVALID',
      `cannot split ${source}`,
      details.map((d) => ({ ...d, path: `${source}: ${d.path}` })),
    );
  };
  let records: { info: { lines: number }; record: string[] }[];
  try {
    records = parse(text, { bom: true, info: true, trim: true, skip_empty_lines: true }) as unknown as {
      info: { lines: number };
      record: string[];
    }[];
  } catch (e) {
    return fail([{ path: 'csv', message: (e as Error).message }]);
  }
  const [head, ...rows] = records;
  if (!head) return fail([{ path: 'row 1', message: 'empty file: expected a header row' }]);
  const header = head.record;
  const labelAt = header.indexOf(o.label);
  if (labelAt < 0) {
    return fail([{ path: 'row 1', message: `no column "${o.label}"; the columns are ${header.join(', ')}` }]);
  }
  const features = header.filter((_, c) => c !== labelAt);
  if (features.length === 0) fail([{ path: 'row 1', message: 'no feature column besides the label' }]);
  const n = rows.length;
  const x = new Float64Array(n * features.length);
  const rawLabels: string[] = [];
  const problems: ErrorDetail[] = [];
  rows.forEach(({ info, record }, r) => {
    if (problems.length >= MAX_PROBLEMS) return;
    if (record.length !== header.length) {
      problems.push({
        path: `row ${info.lines}`,
        message: `${record.length} cells, the header has ${header.length}`,
      });
      return;
    }
    let f = 0;
    record.forEach((cell, c) => {
      if (c === labelAt) return;
      const v = Number(cell);
      if (cell === '' || !Number.isFinite(v)) {
        if (problems.length < MAX_PROBLEMS)
          problems.push({
            path: `row ${info.lines}, column ${header[c]}`,
            message: `${JSON.stringify(cell)} is not a finite number`,
          });
      }
      x[r * features.length + f++] = v;
    });
    const label = record[labelAt]!;
    if (label === '') problems.push({ path: `row ${info.lines}, column ${o.label}`, message: 'empty label' });
    rawLabels.push(label);
  });
  if (problems.length > 0) fail(problems);
  if (n === 0) fail([{ path: 'row 2', message: 'no examples after the header' }]);

  const { y, classes } = numberLabels(rawLabels, o.classes, (m) =>
    fail([{ path: `column ${o.label}`, message: m }]),
  );

  // Stratified: each class gives the same fraction to the held-out set.
  const seed = o.seed ?? 1;
  const heldout: number[] = [];
  const train: number[] = [];
  for (let k = 0; k < classes.length; k++) {
    const members: number[] = [];
    for (let i = 0; i < n; i++) if (y[i] === k) members.push(i);
    const order = seededPermutation(members.length, `${String(seed)}/holdout/${k}`);
    const take = Math.round(members.length * o.holdout);
    order.forEach((p, j) => (j < take ? heldout : train).push(members[p]!));
  }
  heldout.sort((a, b) => a - b);
  train.sort((a, b) => a - b);
  if (train.length < o.clients) {
    fail([{ path: 'rows', message: `${train.length} training examples cannot make ${o.clients} clients` }]);
  }

  const width = features.length;
  const mean = new Array<number>(width).fill(0);
  const std = new Array<number>(width).fill(1);
  if (o.standardize) {
    for (let f = 0; f < width; f++) {
      let s = 0;
      for (const i of train) s += x[i * width + f]!;
      const m = s / train.length;
      let v = 0;
      for (const i of train) v += (x[i * width + f]! - m) ** 2;
      const sd = Math.sqrt(v / train.length);
      mean[f] = m;
      // A constant feature stays constant (0) rather than dividing by 0.
      std[f] = sd > 0 ? sd : 1;
    }
  }
  const examples = (indices: readonly number[]): ClientExamples => {
    const xs = new Float32Array(indices.length * width);
    const ys = new Int32Array(indices.length);
    indices.forEach((i, e) => {
      for (let f = 0; f < width; f++) xs[e * width + f] = (x[i * width + f]! - mean[f]!) / std[f]!;
      ys[e] = y[i]!;
    });
    return { count: indices.length, leaves: [xs, ys] };
  };

  let parts: number[][];
  if (o.nonIid !== undefined) {
    const trainLabels = Int32Array.from(train, (i) => y[i]!);
    try {
      parts = partitionNonIid(trainLabels, o.clients, o.nonIid, `${String(seed)}/clients`).map((p) =>
        p.map((j) => train[j]!),
      );
    } catch (e) {
      return fail([{ path: '--non-iid', message: (e as Error).message }]);
    }
  } else {
    const order = seededPermutation(train.length, `${String(seed)}/clients`);
    parts = Array.from({ length: o.clients }, () => [] as number[]);
    order.forEach((p, j) => parts[j % o.clients]!.push(train[p]!));
  }
  const element = structType([
    ['x', tensorType('float32', [null, width])],
    ['y', tensorType('int32', [null])],
  ]);
  const digits = String(o.clients - 1).length;
  const clients = new Map(parts.map((p, c) => [`client-${String(c).padStart(digits, '0')}`, examples(p)]));
  return {
    clientsCsv: writeClientsCsv(clients, element),
    heldoutCsv: writeClientsCsv(new Map([['heldout', examples(heldout)]]), element, { withClientId: false }),
    scaling: { label: o.label, classes, features, standardized: o.standardize === true, mean, std },
    element,
    counts: { train: train.length, heldout: heldout.length, perClient: parts.map((p) => p.length) },
  };
}

/**
 * Class indices for the labels: integers 0..K-1 stay as they are (so that a file already numbered keeps its
 * numbering); anything else is numbered in sorted order of the distinct values.
 */
function numberLabels(
  raw: readonly string[],
  classes: number | undefined,
  fail: (message: string) => never,
): { y: Int32Array; classes: string[] } {
  const distinct = [...new Set(raw)];
  const integers = distinct.every((v) => /^\d+$/.test(v));
  if (integers) {
    const max = Math.max(...distinct.map(Number));
    const k = classes ?? max + 1;
    if (max >= k) fail(`label ${max} is not below --classes ${k}`);
    return { y: Int32Array.from(raw, Number), classes: Array.from({ length: k }, (_, i) => String(i)) };
  }
  const sorted = distinct.sort();
  const k = classes ?? sorted.length;
  if (sorted.length > k) fail(`${sorted.length} distinct labels do not fit --classes ${k}`);
  const index = new Map(sorted.map((v, i) => [v, i]));
  return { y: Int32Array.from(raw, (v) => index.get(v)!), classes: sorted };
}
