/**
 * A tiny analytics program for the stateful tests, small enough to compute by hand: each device sums its
 * readings (s), the sums are aggregated (total), the server doubles the total (doubled) and broadcasts it,
 * each device scales its own sum by it (t = s x doubled, through a struct and a selection) and those are
 * aggregated (scaled_total).
 */
import { f32 } from '../../src/plans/common';
import { sequenceType, tensorType, type TffType } from '../../src/compute/types';
import type { ClientExamples } from '../../src/data';
import { ProgramBuilder } from '../../src/stateful/builder';
import type { Program } from '../../src/stateful/program';

/** A batch of readings. */
export const READING_BATCH: TffType = tensorType('float32', [null]);

/** The readings collection's name in the device's example store. */
export const READINGS = 'readings';

/** The sum program with every aggregation's minimum `minClients` and a cohort of up to `targetClients`. */
export function sumProgram(minClients = 2, targetClients = 10): Program {
  const pb = new ProgramBuilder();
  const addBatch = pb.fn('add_batch', sequencePair(), (b, p) =>
    b.add(b.field(p, 0), b.reduceSum(b.field(p, 1))),
  );
  pb.computation('local_sum', sequenceType(READING_BATCH), (b, data) =>
    b.fold(data, b.scalar(0), addBatch, {}, 'sum'),
  );
  pb.computation('scale', pairType(f32(), f32()), (b, p) => b.mul(b.field(p, 0), b.field(p, 1)));
  pb.computation('zero', undefined, (b) => b.scalar(0));
  pb.computation('accumulate', pairType(f32(), f32()), (b, p) => b.add(b.field(p, 0), b.field(p, 1)));
  pb.computation('merge', pairType(f32(), f32()), (b, p) => b.add(b.field(p, 0), b.field(p, 1)));
  pb.computation('report', f32(), (b, a) => b.mul(a, 1));
  pb.computation('double', f32(), (b, x) => b.mul(x, 2));
  const fold = { zero: 'zero', accumulate: 'accumulate', merge: 'merge', report: 'report', minClients };

  const data = pb.clientData('readings', { result: 'data' });
  const s = pb.clientCall('local_sum', [data], { result: 's' });
  const total = pb.aggregate(s, { ...fold, result: 'total' });
  const doubled = pb.serverCall('double', [total], { result: 'doubled' });
  const doubledC = pb.broadcast(doubled);
  const t = pb.clientCall('scale', [s, doubledC], { result: 't' });
  const both = pb.clientStruct([{ name: 't', value: t }, { value: s }]);
  const picked = pb.clientSelect(both, 't');
  const scaledTotal = pb.aggregate(picked, { ...fold, result: 'scaled_total' });
  pb.dispose([data, s, doubledC, t, both, picked]);
  pb.output('total', total);
  pb.output('doubled', doubled);
  pb.output('scaled_total', scaledTotal);
  return pb.build({
    name: 'sum-then-scale',
    population: 'sensors',
    client_data: { readings: { collection: READINGS, element: READING_BATCH, batch_size: 2 } },
    cohort: {
      target_clients: targetClients,
      min_clients: minClients,
      join_timeout_s: 60,
      step_timeout_s: 60,
    },
  });
}

/** A device's readings as the example store holds them. */
export function readings(...values: number[]): Record<string, ClientExamples> {
  return { [READINGS]: { count: values.length, leaves: [Float32Array.from(values)] } };
}

function pairType(a: TffType, b: TffType): TffType {
  return { kind: 'struct', fields: [{ type: a }, { type: b }] };
}

function sequencePair(): TffType {
  return pairType(f32(), READING_BATCH);
}
