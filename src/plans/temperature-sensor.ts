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
  numberOption,
  scheduleOptions,
  toSchedule,
  resolveOptions,
  type OptionSpecs,
  type ScheduleOptions,
} from './options';

/** Options of the temperature-sensor plan. */
export interface TemperatureSensorOptions extends ScheduleOptions {
  collection: string;
  batchSize: number;
  /** The threshold of round 0; it rises by one degree every round, as in TFF's example. */
  baseThreshold: number;
}

/** The declared options of the temperature-sensor plan. */
export const TEMPERATURE_SENSOR_OPTIONS: OptionSpecs<TemperatureSensorOptions> = {
  ...dataOptions('temperatures', 32),
  baseThreshold: numberOption('threshold of the first round (rises by 1 each round)', 32),
  ...scheduleOptions({ rounds: 3, targetClients: 10 }),
};

// TFF starts each client's running maximum at absolute zero in Fahrenheit.
const ABSOLUTE_ZERO_F = -459.67;

/**
 * TFF's MapReduce-form temperature sensor example: the fraction of sensors whose highest reading exceeds a
 * threshold that starts at `baseThreshold` and rises by one each round. S = <num_rounds>, C =
 * <max_temperature>, U = <is_over>, A = <num_total, num_over>, R = X = <ratio_over_threshold>.
 */
export function buildTemperatureSensor(options: Partial<TemperatureSensorOptions> = {}): Plan {
  const o = resolveOptions(TEMPERATURE_SENSOR_OPTIONS, options);
  const S = named({ num_rounds: i32() });
  const C = named({ max_temperature: f32() });
  const element = f32([null]);
  const A = named({ num_total: i32(), num_over: i32() });
  const pb = new PlanBuilder();

  const maxReading = pb.fn('max_reading', named({ max: f32(), batch: element }), (b, p) =>
    b.maximum(b.field(p, 'max'), b.reduceMax(b.field(p, 'batch')), 'max'),
  );

  pb.computation('initialize', undefined, (b) => b.struct({ num_rounds: b.scalar(0, 'int32') }));
  pb.computation('prepare', S, (b, s) =>
    b.struct({
      max_temperature: b.add(
        b.scalar(o.baseThreshold),
        b.cast(b.field(s, 'num_rounds'), 'float32'),
        'threshold',
      ),
    }),
  );
  pb.computation('work', workParam(element, C), (b, p) => {
    const max = b.fold(b.field(p, 'data'), b.scalar(ABSOLUTE_ZERO_F), maxReading, {}, 'client_max');
    const isOver = b.greater(max, b.get(p, 'broadcast.max_temperature'), 'is_over');
    return workResult(b, b.struct({ is_over: isOver }));
  });
  pb.computation('zero', undefined, (b) => b.tree.zeros(A));
  pb.computation(
    'accumulate',
    named({ accumulator: A, update: named({ is_over: { kind: 'tensor', dtype: 'bool', shape: [] } }) }),
    (b, p) =>
      b.struct({
        num_total: b.add(b.get(p, 'accumulator.num_total'), 1),
        num_over: b.add(b.get(p, 'accumulator.num_over'), b.cast(b.get(p, 'update.is_over'), 'int32')),
      }),
  );
  pb.computation('merge', named({ a: A, b: A }), (b, p) => b.tree.add(b.field(p, 'a'), b.field(p, 'b')));
  pb.computation('report', A, (b, a) => {
    // With no client in the aggregate the ratio is 0 rather than NaN; the server never releases such a round anyway.
    const total = b.maximum(b.cast(b.field(a, 'num_total'), 'float32'), 1);
    return b.struct({
      ratio_over_threshold: b.div(b.cast(b.field(a, 'num_over'), 'float32'), total, 'ratio'),
    });
  });
  defineSecureParams(pb);
  pb.computation(
    'update',
    updateParam(S, named({ ratio_over_threshold: f32() }), [EMPTY, EMPTY, EMPTY]),
    (b, p) =>
      b.struct([
        b.struct({ num_rounds: b.add(b.get(p, 'state.num_rounds'), 1) }),
        b.get(p, 'aggregates.report'),
      ]),
  );

  return pb.build({
    name: 'temperature-sensor',
    description:
      'Fraction of sensors whose highest reading is over a threshold that rises each round (TFF MapReduce-form example).',
    client_data: { collection: o.collection, element, batch_size: o.batchSize },
    schedule: toSchedule(o),
  });
}
