/**
 * A tiny analytics program for the stateful tests, small enough to compute by hand: each device sums its
 * readings (s), the sums are aggregated (total), the server doubles the total (doubled) and broadcasts it,
 * each device scales its own sum by it (t = s x doubled, through a struct and a selection) and those are
 * aggregated (scaled_total).
 */
import { RoundhouseClient } from '../../src/client';
import { MemoryExampleStore } from '../../src/client/example-store';
import { f32, i32 } from '../../src/plans/common';
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
  return pb.build(sensorsMeta('sum-then-scale', minClients, targetClients));
}

/** What both programs of the sensors population share: their readings and a cohort of 60 s timeouts. */
function sensorsMeta(name: string, minClients: number, targetClients: number, stepTimeoutS = 60) {
  return {
    name,
    population: 'sensors',
    client_data: { readings: { collection: READINGS, element: READING_BATCH, batch_size: 2 } },
    cohort: {
      target_clients: targetClients,
      min_clients: minClients,
      join_timeout_s: 60,
      step_timeout_s: stepTimeoutS,
    },
  };
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

/** How a secure count is summed: one of the secure sums' parameters, and its masking. */
export interface SecureCountOptions {
  readonly bitwidth?: number;
  readonly maxInput?: number;
  readonly modulus?: number;
  readonly protocol?: 'secagg+' | 'secagg' | 'none';
  readonly deadlineS?: number;
  /** The cohort's step_timeout_s (default 60). */
  readonly stepTimeoutS?: number;
}

/**
 * A secure-analytics program: each device counts its readings (n) and those above 2 (high), as int32; the
 * counts are summed with a secure sum (`bitwidth` 8 by default, under SecAgg+) into total; the server
 * divides (fraction, float32) and broadcasts it, and each device's count of readings at most 2 (n - high)
 * is summed in the clear by an aggregate (low_total), so that one program crosses both kinds of aggregation.
 */
export function secureCountProgram(
  minClients = 2,
  targetClients = 10,
  o: SecureCountOptions = { bitwidth: 8 },
): Program {
  const pb = new ProgramBuilder();
  const counts: TffType = {
    kind: 'struct',
    fields: [
      { name: 'n', type: i32() },
      { name: 'high', type: i32() },
    ],
  };
  const countBatch = pb.fn('count_batch', pairType(counts, READING_BATCH), (b, p) => {
    const acc = b.field(p, 0);
    const batch = b.field(p, 1);
    return b.struct({
      n: b.add(b.field(acc, 'n'), b.size(batch)),
      high: b.add(b.field(acc, 'high'), b.reduceSum(b.cast(b.greater(batch, 2), 'int32'))),
    });
  });
  pb.computation('count', sequenceType(READING_BATCH), (b, data) =>
    b.fold(data, b.struct({ n: b.scalar(0, 'int32'), high: b.scalar(0, 'int32') }), countBatch, {}, 'counts'),
  );
  pb.computation('fraction', counts, (b, c) =>
    b.div(b.cast(b.field(c, 'high'), 'float32'), b.cast(b.field(c, 'n'), 'float32')),
  );
  pb.computation('low', counts, (b, c) => b.cast(b.sub(b.field(c, 'n'), b.field(c, 'high')), 'float32'));
  pb.computation('zero', undefined, (b) => b.scalar(0));
  pb.computation('accumulate', pairType(f32(), f32()), (b, p) => b.add(b.field(p, 0), b.field(p, 1)));
  pb.computation('merge', pairType(f32(), f32()), (b, p) => b.add(b.field(p, 0), b.field(p, 1)));
  pb.computation('report', f32(), (b, a) => b.mul(a, 1));

  const data = pb.clientData('readings', { result: 'data' });
  const c = pb.clientCall('count', [data], { result: 'c' });
  const total = pb.secureSum(c, {
    ...(o.bitwidth !== undefined ? { bitwidth: o.bitwidth } : {}),
    ...(o.maxInput !== undefined ? { maxInput: o.maxInput } : {}),
    ...(o.modulus !== undefined ? { modulus: o.modulus } : {}),
    ...(o.deadlineS !== undefined ? { deadlineS: o.deadlineS } : {}),
    ...(o.protocol ? { secureAggregation: { protocol: o.protocol } } : {}),
    minClients,
    result: 'total',
  });
  const fraction = pb.serverCall('fraction', [total], { result: 'fraction' });
  const low = pb.clientCall('low', [c], { result: 'low' });
  const lowTotal = pb.aggregate(low, {
    zero: 'zero',
    accumulate: 'accumulate',
    merge: 'merge',
    report: 'report',
    minClients,
    result: 'low_total',
  });
  pb.dispose([data, c, low]);
  pb.output('total', total);
  pb.output('fraction', fraction);
  pb.output('low_total', lowTotal);
  return pb.build(sensorsMeta('secure-count', minClients, targetClients, o.stepTimeoutS));
}

/** A device's population, id, examples, and optionally its own fetch and a signal that stops it. */
export type DeviceArgs = [
  population: string,
  deviceId: string,
  data: Record<string, ClientExamples>,
  fetch?: typeof globalThis.fetch,
  signal?: AbortSignal,
];

/**
 * An SDK device of `population` on `server` with its examples in memory, one try per request (the tests'
 * failures should show at once), optionally through its own fetch and with a signal that stops it.
 */
export function programDevice(
  server: string,
  ...[population, deviceId, data, fetch, signal]: DeviceArgs
): RoundhouseClient {
  return new RoundhouseClient({
    server,
    population,
    deviceId,
    store: new MemoryExampleStore(data),
    retry: { attempts: 1 },
    ...(fetch ? { fetch } : {}),
    ...(signal ? { signal } : {}),
  });
}
