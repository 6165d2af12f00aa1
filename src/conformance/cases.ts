/**
 * The cases of the client conformance kit, as data: which library plan with which options, the examples of
 * the one client, whether the client must upload or refuse, and for a refusal what is broken. The generator
 * (`generate.ts`) turns each into a directory of conformance/.
 */

/** How closely a float32 upload must match: see conformance/README.md, "Tolerances". */
export type ToleranceKind =
  /** Integer and bool results only, or float32 results no op rounds (a maximum, a comparison). */
  | 'exact'
  /** Sums of the examples' float32 values: the worst rounding of summing them in any order. */
  | 'sum'
  /** Local SGD: many dependent float32 ops (matmul, softmax, exp, log) whose last bits are unspecified. */
  | 'training';

/** What a refuse case breaks in the otherwise valid inputs of its plan. */
export type Breakage =
  /** The client plan's `format` is one no client knows. */
  | { readonly kind: 'client-plan-format'; readonly format: string }
  /** The first element of the broadcast's first float32 tensor is NaN. */
  | { readonly kind: 'broadcast-nan' }
  /** The cell of example `row` (0-based) and column `column` of examples.csv is replaced by `text`. */
  | { readonly kind: 'csv-cell'; readonly row: number; readonly column: string; readonly text: string };

/** One case of the kit. */
export interface CaseSpec {
  /** `<plan>/<name>`: the manifest id and the case's directory. */
  readonly id: string;
  /** The library plan (PLAN_LIBRARY) and the options it is built with. */
  readonly plan: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly description: string;
  /**
   * The client's examples, one row per example: the values of its CSV columns, leaf after leaf in
   * `tensorLeaves(element)` order. `random` is seeded by the case id.
   */
  readonly rows: (random: () => number) => number[][];
  /** Set for a case the client must upload for: how its float32 results are compared. */
  readonly tolerance?: ToleranceKind;
  /** Set for a case the client must refuse: what is wrong with its inputs. */
  readonly breakage?: Breakage;
}

/** A uniform number in [lo, hi) with at most `decimals` decimals, so that examples.csv stays readable. */
function uniform(random: () => number, lo: number, hi: number, decimals = 3): number {
  const scale = 10 ** decimals;
  return Math.round((lo + (hi - lo) * random()) * scale) / scale;
}

/** A uniform integer in [lo, hi]. */
function integer(random: () => number, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

function times<T>(n: number, f: (i: number) => T): T[] {
  return Array.from({ length: n }, (_, i) => f(i));
}

/** Single-column rows. */
function column(values: readonly number[]): number[][] {
  return values.map((v) => [v]);
}

/** The small MLP of the FedAvg cases: 5 inputs, one relu layer of 4, 3 classes (39 weights). */
const FEDAVG_SMALL = { layers: [5, 4, 3], batchSize: 4 } as const;

/** `n` labelled examples for FEDAVG_SMALL: features in [-1, 1), labels in [0, 3). */
function fedavgRows(random: () => number, n: number): number[][] {
  return times(n, () => [...times(5, () => uniform(random, -1, 1)), integer(random, 0, 2)]);
}

/** Every case, in manifest order. */
export const CASES: readonly CaseSpec[] = [
  {
    id: 'federated-sum/partial-batch',
    plan: 'federated-sum',
    options: { batchSize: 4 },
    description: 'ten int32 values in batches of 4: two full batches and a last batch of 2',
    rows: (r) => column(times(10, () => integer(r, -50, 50))),
    tolerance: 'exact',
  },
  {
    id: 'federated-sum/one-example',
    plan: 'federated-sum',
    options: {},
    description: 'a single example: one partial batch of one value',
    rows: () => column([-17]),
    tolerance: 'exact',
  },
  {
    id: 'federated-sum/clip-max',
    plan: 'federated-sum',
    options: { batchSize: 3, minValue: -100, maxValue: 100 },
    description: 'the sum 250 is clipped to the declared maximum 100 by clip_by_value',
    rows: () => column([60, 70, 20, 50, 40, 10]),
    tolerance: 'exact',
  },
  {
    id: 'federated-sum/clip-min',
    plan: 'federated-sum',
    options: { batchSize: 3, minValue: -100, maxValue: 100 },
    description: 'the sum -101 is clipped to the declared minimum -100 by clip_by_value',
    rows: () => column([-60, -30, -11]),
    tolerance: 'exact',
  },
  {
    id: 'federated-sum/secure',
    plan: 'federated-sum',
    options: { secure: true, batchSize: 8 },
    description: '--secure: U is empty and the sum travels in V1 (the field secure_sum_bitwidth sums)',
    rows: (r) => column(times(20, () => integer(r, 0, 200))),
    tolerance: 'exact',
  },
  {
    id: 'federated-sum/unknown-format',
    plan: 'federated-sum',
    options: {},
    description: 'the client plan has a format no client knows; the client must not run it',
    rows: () => column([1, 2, 3]),
    breakage: { kind: 'client-plan-format', format: 'roundhouse.client-plan/v999' },
  },
  {
    id: 'histogram/bin-edges',
    plan: 'histogram',
    options: { bins: 5, batchSize: 3 },
    description:
      'values at the bin edges: 0 and 4 are counted, -1 and 5 (just outside [0, 5)) are ignored by one_hot',
    rows: () => column([-1, 0, 4, 5, 2, 2, 0, 4, 4, 7, -3]),
    tolerance: 'exact',
  },
  {
    id: 'histogram/clip-max-input',
    plan: 'histogram',
    options: { bins: 4, maxInput: 3, batchSize: 4 },
    description: 'a bin counted 7 times is clipped to max_input 3; the others stay below it',
    rows: () => column([1, 1, 1, 1, 1, 1, 1, 2, 3, 3]),
    tolerance: 'exact',
  },
  {
    id: 'histogram/secure',
    plan: 'histogram',
    options: { secure: true, bins: 6, maxInput: 10, batchSize: 8 },
    description: '--secure: U is empty and the clipped counts travel in V2 (the field secure_sum sums)',
    rows: (r) => column(times(30, () => integer(r, -1, 6))),
    tolerance: 'exact',
  },
  {
    id: 'histogram/fractional-value',
    plan: 'histogram',
    options: { bins: 5, batchSize: 4 },
    description:
      'a cell "2.5" in an int32 column: the examples do not fit client_data, the client must refuse',
    rows: () => column([1, 2, 3, 4]),
    breakage: { kind: 'csv-cell', row: 2, column: 'value', text: '2.5' },
  },
  {
    id: 'mean/negative-fractional',
    plan: 'mean',
    options: { batchSize: 4 },
    description: 'negative and fractional float32 values, in two full batches and a partial one',
    rows: () => column([-2.5, 0.1, 1e-3, -7.25, 3.75, -0.333, 12.5, 0.2, -1.125, 6]),
    tolerance: 'sum',
  },
  {
    id: 'mean/one-value',
    plan: 'mean',
    options: {},
    description: 'a single example',
    rows: () => column([-0.3]),
    tolerance: 'sum',
  },
  {
    id: 'mean/several-batches',
    plan: 'mean',
    options: { batchSize: 8 },
    description: '53 seeded values in [-100, 100): six full batches and a last batch of 5',
    rows: (r) => column(times(53, () => uniform(r, -100, 100, 4))),
    tolerance: 'sum',
  },
  {
    id: 'mean/not-a-number',
    plan: 'mean',
    options: { batchSize: 4 },
    description: 'a cell "NaN" in a float32 column: not a decimal number, the client must refuse',
    rows: () => column([1.5, 2.5, 3.5]),
    breakage: { kind: 'csv-cell', row: 1, column: 'value', text: 'NaN' },
  },
  {
    id: 'temperature-sensor/at-threshold',
    plan: 'temperature-sensor',
    options: { batchSize: 4 },
    description: 'the highest reading equals the threshold 32: greater is false',
    rows: () => column([20.5, 32, 31.99, -4, 32, 10]),
    tolerance: 'exact',
  },
  {
    id: 'temperature-sensor/over',
    plan: 'temperature-sensor',
    options: { batchSize: 4 },
    description: 'one reading 32.01 over the threshold, in the partial last batch',
    rows: () => column([12, 14.5, 18, 30, 29.5, 32.01, 25]),
    tolerance: 'exact',
  },
  {
    id: 'temperature-sensor/broadcast-nan',
    plan: 'temperature-sensor',
    options: {},
    description: 'the broadcast threshold is NaN: a client must refuse a non-finite broadcast',
    rows: () => column([30, 40]),
    breakage: { kind: 'broadcast-nan' },
  },
  {
    id: 'fedavg/one-epoch',
    plan: 'fedavg',
    options: { ...FEDAVG_SMALL, epochs: 1 },
    description:
      'FedAvg of a 5-4-3 MLP, one epoch of SGD over 10 examples in batches of 4 (partial last batch), no shuffle',
    rows: (r) => fedavgRows(r, 10),
    tolerance: 'training',
  },
  {
    id: 'fedavg/shuffled-epochs',
    plan: 'fedavg',
    options: { ...FEDAVG_SMALL, epochs: 3, seed: 7 },
    description:
      "three epochs over 11 examples: epochs 2 and 3 permute the examples by fold's shuffle_seed 7 (ir.md)",
    rows: (r) => fedavgRows(r, 11),
    tolerance: 'training',
  },
  {
    id: 'fedavg/dp-clipped',
    plan: 'fedavg',
    options: { ...FEDAVG_SMALL, epochs: 2, dp: true, clip: 0.05, noiseMultiplier: 0 },
    description:
      "--dp: the client clips its model change to the broadcast's clip 0.05 (the change is longer, so it is scaled)",
    rows: (r) => fedavgRows(r, 9),
    tolerance: 'training',
  },
  {
    id: 'fedavg/dp-adaptive',
    plan: 'fedavg',
    options: { ...FEDAVG_SMALL, epochs: 2, dp: true, clip: 100, noiseMultiplier: 0, adaptiveClip: true },
    description:
      '--dp --adaptive-clip: a change within the clip is kept as it is, and the indicator `clipped` is 0.5',
    rows: (r) => fedavgRows(r, 6),
    tolerance: 'training',
  },
  {
    id: 'fedavg/label-out-of-range',
    plan: 'fedavg',
    options: { ...FEDAVG_SMALL, epochs: 1 },
    description: 'a label 3 outside the declared range [0, 2] of y: the client must refuse its examples',
    rows: (r) => fedavgRows(r, 5),
    breakage: { kind: 'csv-cell', row: 3, column: 'y', text: '3' },
  },
];
