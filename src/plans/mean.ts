import { PlanBuilder } from '../compute/builder';
import type { Plan } from '../generated/plan';
import {
  dataOptions,
  defineSecureParams,
  EMPTY,
  f32,
  i32,
  named,
  updateParam,
  workParam,
  workResult,
} from './common';
import {
  scheduleOptions,
  toSchedule,
  resolveOptions,
  type OptionSpecs,
  type ScheduleOptions,
} from './options';

/** Options of the mean plan. */
export interface MeanOptions extends ScheduleOptions {
  collection: string;
  batchSize: number;
}

/** The declared options of the mean plan. */
export const MEAN_OPTIONS: OptionSpecs<MeanOptions> = {
  ...dataOptions('values', 32),
  ...scheduleOptions({ rounds: 1, targetClients: 10 }),
};

/**
 * The example-weighted mean of float32 values over every client's data (each value counts once, whichever
 * client holds it). U = <sum, count>, A = <sum, count, clients>, R = X = <mean, count, clients>; S, C = <>.
 */
export function buildMean(options: Partial<MeanOptions> = {}): Plan {
  const o = resolveOptions(MEAN_OPTIONS, options);
  const element = f32([null]);
  const U = named({ sum: f32(), count: i32() });
  const A = named({ sum: f32(), count: i32(), clients: i32() });
  const pb = new PlanBuilder();
  const addBatch = pb.fn('add_batch', named({ acc: U, batch: element }), (b, p) => {
    const batch = b.field(p, 'batch');
    return b.struct({
      sum: b.add(b.get(p, 'acc.sum'), b.reduceSum(batch)),
      count: b.add(b.get(p, 'acc.count'), b.dim(batch, 0)),
    });
  });
  pb.computation('initialize', undefined, (b) => b.struct([]));
  pb.computation('prepare', EMPTY, (_b, s) => s);
  pb.computation('work', workParam(element, EMPTY), (b, p) =>
    workResult(b, b.fold(b.field(p, 'data'), b.tree.zeros(U), addBatch, {}, 'client')),
  );
  pb.computation('zero', undefined, (b) => b.tree.zeros(A));
  pb.computation('accumulate', named({ accumulator: A, update: U }), (b, p) =>
    b.struct({
      sum: b.add(b.get(p, 'accumulator.sum'), b.get(p, 'update.sum')),
      count: b.add(b.get(p, 'accumulator.count'), b.get(p, 'update.count')),
      clients: b.add(b.get(p, 'accumulator.clients'), 1),
    }),
  );
  pb.computation('merge', named({ a: A, b: A }), (b, p) => b.tree.add(b.field(p, 'a'), b.field(p, 'b')));
  const R = named({ mean: f32(), count: i32(), clients: i32() });
  pb.computation('report', A, (b, a) => {
    // An empty aggregate reports 0 rather than NaN; such a round is never released.
    const n = b.maximum(b.cast(b.field(a, 'count'), 'float32'), 1);
    return b.struct({
      mean: b.div(b.field(a, 'sum'), n, 'mean'),
      count: b.field(a, 'count'),
      clients: b.field(a, 'clients'),
    });
  });
  defineSecureParams(pb);
  pb.computation('update', updateParam(EMPTY, R), (b, p) =>
    b.struct([b.field(p, 'state'), b.get(p, 'aggregates.report')]),
  );

  return pb.build({
    name: 'mean',
    description: 'Example-weighted mean of float32 values over all clients.',
    client_data: { collection: o.collection, element, batch_size: o.batchSize },
    schedule: toSchedule(o),
  });
}
