import { PlanBuilder } from '../compute/builder';
import type { Plan } from '../generated/plan';
import { AppError } from '../errors';
import {
  boundModeOption,
  dataOptions,
  defineSecureParams,
  EMPTY,
  i32,
  maxClientsPerRound,
  named,
  updateParam,
  workParam,
  workResult,
} from './common';
import {
  boolOption,
  intOption,
  optionalIntOption,
  scheduleOptions,
  secAggOptions,
  secureSchedule,
  resolveOptions,
  type OptionSpecs,
  type SecAggOptions,
  type ScheduleOptions,
} from './options';

/** Options of the federated-sum plan. */
export interface FederatedSumOptions extends ScheduleOptions, SecAggOptions {
  collection: string;
  batchSize: number;
  /** Sends each client's sum through secure_sum_bitwidth (V1) instead of the plain aggregation path. */
  secure: boolean;
  /** Bits of each client's sum in the secure variant: client sums must lie in [0, 2^bitwidth). */
  bitwidth: number;
  /** Plain variant: the smallest sum one client may contribute (default: minus the largest). */
  minValue: number | undefined;
  /** Plain variant: the largest sum one client may contribute (default: 2^31-1 over the clients a round selects). */
  maxValue: number | undefined;
  /** Plain variant: what the server does to an upload outside [minValue, maxValue]. */
  boundMode: 'clip' | 'reject';
}

/** The declared options of the federated-sum plan. */
export const FEDERATED_SUM_OPTIONS: OptionSpecs<FederatedSumOptions> = {
  ...dataOptions('numbers', 32),
  secure: boolOption('aggregate through secure_sum_bitwidth instead of the plain path', false),
  ...secAggOptions(),
  bitwidth: intOption('bitwidth of each client sum in the secure variant', 16, { min: 1, max: 31 }),
  minValue: optionalIntOption('plain variant: smallest sum one client may contribute', 'minus --max-value', {
    min: -(2 ** 31),
    max: 2 ** 31 - 1,
  }),
  maxValue: optionalIntOption(
    'plain variant: largest sum one client may contribute',
    '(2^31-1) / clients selected a round, so the total never overflows',
    { min: -(2 ** 31), max: 2 ** 31 - 1 },
  ),
  boundMode: boundModeOption("the plain variant's value range"),
  ...scheduleOptions({ rounds: 3, targetClients: 10 }),
};

/**
 * TFF's federated sum example: every client sums its int32 values and the server outputs the total, X =
 * <sum>. Plain: U = int32, A = R = int32. Secure: U = A = R = <> and V1 = int32 with the given bitwidth.
 * S and C are `<>` in both. The plain variant declares the update bound U in [minValue, maxValue] (an
 * honest client clips its own sum to it); by default the range is small enough that the sum of every
 * client a round selects fits int32, so the aggregate is exact and one client moves it by at most maxValue.
 */
export function buildFederatedSum(options: Partial<FederatedSumOptions> = {}): Plan {
  const o = resolveOptions(FEDERATED_SUM_OPTIONS, options);
  const maxValue = o.maxValue ?? Math.floor((2 ** 31 - 1) / maxClientsPerRound(o));
  const minValue = o.minValue ?? -maxValue;
  if (minValue > maxValue) {
    throw new AppError('BAD_REQUEST', `option --min-value: ${minValue} is more than --max-value ${maxValue}`);
  }
  const element = i32([null]);
  const pb = new PlanBuilder();
  const addBatch = pb.fn('add_batch', named({ sum: i32(), batch: element }), (b, p) =>
    b.add(b.field(p, 'sum'), b.reduceSum(b.field(p, 'batch')), 'sum'),
  );
  pb.computation('initialize', undefined, (b) => b.struct([]));
  pb.computation('prepare', EMPTY, (_b, s) => s);
  pb.computation('work', workParam(element, EMPTY), (b, p) => {
    const sum = b.fold(b.field(p, 'data'), b.scalar(0, 'int32'), addBatch, {}, 'client_sum');
    return o.secure
      ? workResult(b, b.struct([]), { v1: sum })
      : workResult(b, b.clip(sum, minValue, maxValue, 'bounded_sum'));
  });
  const A = o.secure ? EMPTY : i32();
  const V1 = o.secure ? i32() : EMPTY;
  pb.computation('zero', undefined, (b) => (o.secure ? b.struct([]) : b.scalar(0, 'int32')));
  pb.computation('accumulate', named({ accumulator: A, update: A }), (b, p) =>
    o.secure ? b.field(p, 'accumulator') : b.add(b.field(p, 'accumulator'), b.field(p, 'update')),
  );
  pb.computation('merge', named({ a: A, b: A }), (b, p) =>
    o.secure ? b.field(p, 'a') : b.add(b.field(p, 'a'), b.field(p, 'b')),
  );
  pb.computation('report', A, (_b, a) => a);
  defineSecureParams(pb, o.secure ? { bitwidth: o.bitwidth } : {});
  pb.computation('update', updateParam(EMPTY, A, [V1, EMPTY, EMPTY]), (b, p) => {
    const sum = b.get(p, o.secure ? 'aggregates.bitwidth_sum' : 'aggregates.report');
    return b.struct([b.field(p, 'state'), b.struct({ sum })]);
  });

  return pb.build({
    name: o.secure ? 'federated-secure-sum' : 'federated-sum',
    description: `Sum of every client's int32 values${o.secure ? `, through secure_sum_bitwidth (${o.bitwidth} bits per client)` : `, each client's sum bounded to [${minValue}, ${maxValue}] (${o.boundMode})`} (TFF MapReduce-form example).`,
    client_data: { collection: o.collection, element, batch_size: o.batchSize },
    schedule: secureSchedule(o, o.secure),
    update_bounds: o.secure
      ? undefined
      : { ranges: [{ path: '', min: minValue, max: maxValue, mode: o.boundMode }] },
  });
}
