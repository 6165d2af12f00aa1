/**
 * Stateful programs (docs/stateful.md) written by hand as JSON, for the checker's tests and the CLI's.
 */
import { ComputationBuilder, PlanBuilder, type Body, type NullaryBody } from '../../src/compute/builder';
import type { TffType } from '../../src/compute/types';
import type { Computation } from '../../src/generated/computation';
import { f32, named } from '../../src/plans/common';
import { PROGRAM_FORMAT, type Program } from '../../src/stateful/program';

/** One computation built outside a plan builder, whose slots are the MapReduce form's. */
export function computation(label: string, parameter: TffType, body: Body): Computation;
export function computation(label: string, parameter: undefined, body: NullaryBody): Computation;
export function computation(
  label: string,
  parameter: TffType | undefined,
  body: Body | NullaryBody,
): Computation {
  const b = new ComputationBuilder(label, parameter);
  const result = parameter ? (body as Body)(b, b.param) : (body as NullaryBody)(b);
  return b.finish(result);
}

/** The statistics each device of the variance program keeps between its two client steps. */
export const STATS = named({ sum: f32(), sumsq: f32(), count: f32() });
const DEV = named({ sum: f32(), count: f32() });

/** zero, accumulate and merge summing a struct of float32 scalars T: A = T. */
function sumAggregation(prefix: string, T: TffType): Record<string, Computation> {
  return {
    [`${prefix}zero`]: computation('zero', undefined, (b) => b.tree.zeros(T)),
    [`${prefix}accumulate`]: computation('accumulate', named({ accumulator: T, update: T }), (b, p) =>
      b.tree.add(b.field(p, 'accumulator'), b.field(p, 'update')),
    ),
    [`${prefix}merge`]: computation('merge', named({ a: T, b: T }), (b, p) =>
      b.tree.add(b.field(p, 'a'), b.field(p, 'b')),
    ),
  };
}

/**
 * An analytics program shaped like train-then-evaluate: each device sums its readings, the server derives
 * the mean from the aggregate and broadcasts it, each device then sums its squared deviations from that
 * mean using the statistics it still holds, and a second aggregate gives the variance.
 */
export function varianceProgram(): Program {
  const pb = new PlanBuilder();
  const element = f32([null]);
  const addBatch = pb.fn('add_batch', named({ acc: STATS, batch: element }), (b, p) => {
    const batch = b.field(p, 'batch');
    return b.struct({
      sum: b.add(b.get(p, 'acc.sum'), b.reduceSum(batch)),
      sumsq: b.add(b.get(p, 'acc.sumsq'), b.reduceSum(b.square(batch))),
      count: b.add(b.get(p, 'acc.count'), b.cast(b.dim(batch, 0), 'float32')),
    });
  });
  const computations: Record<string, Computation> = {
    local_stats: computation('local_stats', { kind: 'sequence', element }, (b, data) =>
      b.fold(data, b.tree.zeros(STATS), addBatch),
    ),
    ...sumAggregation('', STATS),
    report: computation('report', STATS, (_b, a) => a),
    mean_of: computation('mean_of', STATS, (b, t) =>
      b.div(b.field(t, 'sum'), b.maximum(b.field(t, 'count'), 1)),
    ),
    // Σ(x - m)² = Σx² - 2mΣx + n m², from the statistics the device kept.
    sq_dev: computation('sq_dev', named({ stats: STATS, mean: f32() }), (b, p) => {
      const m = b.field(p, 'mean');
      const twice = b.mul(b.mul(m, 2), b.get(p, 'stats.sum'));
      return b.add(b.sub(b.get(p, 'stats.sumsq'), twice), b.mul(b.get(p, 'stats.count'), b.square(m)));
    }),
    ...sumAggregation('v', DEV),
    vreport: computation('vreport', DEV, (b, a) =>
      b.div(b.field(a, 'sum'), b.maximum(b.field(a, 'count'), 1)),
    ),
  };
  const program: Program = {
    format: PROGRAM_FORMAT,
    name: 'mean-then-variance',
    population: 'sensors',
    client_data: { readings: { collection: 'readings', element, batch_size: 4 } },
    cohort: { target_clients: 10, min_clients: 3, join_timeout_s: 60, step_timeout_s: 60 },
    functions: pb.functionTable,
    computations,
    steps: [
      { op: 'client_data', collection: 'readings', result: 'values' },
      { op: 'client_call', fn: 'local_stats', args: ['values'], result: 'stats' },
      {
        op: 'aggregate',
        value: 'stats',
        zero: 'zero',
        accumulate: 'accumulate',
        merge: 'merge',
        report: 'report',
        min_clients: 3,
        result: 'totals',
      },
      { op: 'server_call', fn: 'mean_of', args: ['totals'], result: 'mean' },
      { op: 'broadcast', value: 'mean', result: 'mean_c' },
      { op: 'client_call', fn: 'sq_dev', args: ['stats', 'mean_c'], result: 'dev' },
      { op: 'client_select', value: 'stats', field: 'count', result: 'n' },
      {
        op: 'client_struct',
        fields: [
          { name: 'sum', value: 'dev' },
          { name: 'count', value: 'n' },
        ],
        result: 'dev_stats',
      },
      {
        op: 'aggregate',
        value: 'dev_stats',
        zero: 'vzero',
        accumulate: 'vaccumulate',
        merge: 'vmerge',
        report: 'vreport',
        min_clients: 5,
        deadline_s: 30,
        result: 'variance',
      },
      { op: 'dispose', values: ['values', 'stats', 'mean_c', 'dev', 'n', 'dev_stats'] },
    ],
    outputs: { mean: 'mean', variance: 'variance' },
  };
  // A plain JSON document, as a program is submitted.
  return JSON.parse(JSON.stringify(program)) as Program;
}
