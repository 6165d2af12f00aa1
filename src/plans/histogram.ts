import { PlanBuilder } from '../compute/builder';
import type { Plan } from '../generated/plan';
import {
  boundModeOption,
  dataOptions,
  defineSecureParams,
  EMPTY,
  i32,
  named,
  updateParam,
  workParam,
  workResult,
} from './common';
import {
  boolOption,
  intOption,
  scheduleOptions,
  secAggOptions,
  secureSchedule,
  resolveOptions,
  type OptionSpecs,
  type SecAggOptions,
  type ScheduleOptions,
} from './options';

/** Options of the histogram plan. */
export interface HistogramOptions extends ScheduleOptions, SecAggOptions {
  collection: string;
  batchSize: number;
  /** Values are counted in bins 0..bins-1; values outside are ignored. */
  bins: number;
  /** Sends the counts through secure_sum with max_input (V2) instead of the plain path. */
  secure: boolean;
  /**
   * The largest count one client contributes to a bin: a client clips its counts to [0, maxInput]; the
   * secure variant sums them with that max_input, the plain one declares it as an update bound.
   */
  maxInput: number;
  /** Plain variant: what the server does to an upload with a count outside [0, maxInput]. */
  boundMode: 'clip' | 'reject';
}

/** The declared options of the histogram plan. */
export const HISTOGRAM_OPTIONS: OptionSpecs<HistogramOptions> = {
  ...dataOptions('values', 32),
  bins: intOption('number of bins; int32 values in [0, bins) are counted, others ignored', 10, {
    min: 1,
    max: 1_000_000,
  }),
  secure: boolOption('aggregate the counts through secure_sum (max_input) instead of the plain path', false),
  ...secAggOptions(),
  maxInput: intOption(
    'largest count one client contributes to a bin (clipped; the secure max_input, the plain update bound)',
    1000,
    { min: 1, max: 2 ** 31 - 1 },
  ),
  boundMode: boundModeOption("the plain variant's count range"),
  ...scheduleOptions({ rounds: 1, targetClients: 10 }),
};

/**
 * A federated histogram of int32 values: counts per bin over every client's data, each client's count per
 * bin clipped to [0, maxInput] (the plain variant also declares that range as an update bound, so a
 * hostile upload moves a bin by at most maxInput). Plain: U = <counts>,
 * A = R = <counts, clients>. Secure: V2 = counts clipped to max_input, U = <>, A = R = <clients>. Either
 * way X = <counts=int32[bins], clients>; S and C are `<>`.
 */
export function buildHistogram(options: Partial<HistogramOptions> = {}): Plan {
  const o = resolveOptions(HISTOGRAM_OPTIONS, options);
  const element = i32([null]);
  const counts = i32([o.bins]);
  const pb = new PlanBuilder();
  const countBatch = pb.fn('count_batch', named({ counts, batch: element }), (b, p) => {
    // one_hot gives an all-zero row for values outside [0, bins), which is what "ignored" means here.
    const perValue = b.cast(b.oneHot(b.field(p, 'batch'), o.bins), 'int32');
    return b.add(b.field(p, 'counts'), b.reduceSum(perValue, { axes: [0] }), 'counts');
  });
  pb.computation('initialize', undefined, (b) => b.struct([]));
  pb.computation('prepare', EMPTY, (_b, s) => s);
  pb.computation('work', workParam(element, EMPTY), (b, p) => {
    const local = b.fold(b.field(p, 'data'), b.tree.zeros(counts), countBatch, {}, 'client_counts');
    const clipped = b.clip(local, 0, o.maxInput, 'clipped');
    return o.secure
      ? workResult(b, b.struct([]), { v2: clipped })
      : workResult(b, b.struct({ counts: clipped }));
  });
  const U = o.secure ? EMPTY : named({ counts });
  const A = o.secure ? named({ clients: i32() }) : named({ counts, clients: i32() });
  pb.computation('zero', undefined, (b) => b.tree.zeros(A));
  pb.computation('accumulate', named({ accumulator: A, update: U }), (b, p) => {
    const clients = b.add(b.get(p, 'accumulator.clients'), 1, 'clients');
    if (o.secure) return b.struct({ clients });
    return b.struct({ counts: b.add(b.get(p, 'accumulator.counts'), b.get(p, 'update.counts')), clients });
  });
  pb.computation('merge', named({ a: A, b: A }), (b, p) => b.tree.add(b.field(p, 'a'), b.field(p, 'b')));
  pb.computation('report', A, (_b, a) => a);
  defineSecureParams(pb, o.secure ? { maxInput: o.maxInput } : {});
  pb.computation('update', updateParam(EMPTY, A, [EMPTY, o.secure ? counts : EMPTY, EMPTY]), (b, p) => {
    const total = b.get(p, o.secure ? 'aggregates.max_input_sum' : 'aggregates.report.counts');
    return b.struct([
      b.field(p, 'state'),
      b.struct({ counts: total, clients: b.get(p, 'aggregates.report.clients') }),
    ]);
  });

  return pb.build({
    name: 'histogram',
    description: `Counts of int32 values in ${o.bins} bins over all clients, at most ${o.maxInput} per client and bin${o.secure ? ', through secure_sum' : ` (${o.boundMode})`}.`,
    client_data: { collection: o.collection, element, batch_size: o.batchSize },
    schedule: secureSchedule(o, o.secure),
    update_bounds: o.secure
      ? undefined
      : { ranges: [{ path: 'counts', min: 0, max: o.maxInput, mode: o.boundMode }] },
  });
}
