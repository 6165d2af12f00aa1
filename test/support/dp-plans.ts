/**
 * Small dp plans for the differential-privacy tests. Each client holds float32 values whose sum n is its
 * "norm": its record is n times the first unit vector of R^dims (zeros with `zeroRecord`, so that all a round
 * releases is the server's noise), and with adaptive clipping its indicator is +0.5 when n is at most the
 * round's clip (from the broadcast) and -0.5 otherwise. The plan's report passes A through, and update
 * releases the noisy record sum as the state and as X, with the noisy indicator sum and the client count.
 */
import { PlanBuilder } from '../../src/compute/builder';
import type { ClientExamples } from '../../src/data';
import { AppError } from '../../src/errors';
import { checkPlan } from '../../src/plan/validate';
import type { DifferentialPrivacy, Plan } from '../../src/generated/plan';
import {
  defineSecureParams,
  f32,
  i32,
  named,
  updateParam,
  workParam,
  workResult,
} from '../../src/plans/common';

/** The function that sums a client's batches (its norm). */
function addBatchFn(pb: PlanBuilder, element: ReturnType<typeof f32>) {
  return pb.fn('add_batch', named({ sum: f32(), batch: element }), (b, p) =>
    b.add(b.field(p, 'sum'), b.reduceSum(b.field(p, 'batch')), 'sum'),
  );
}

/** Clients holding one value each, their norm (the data of the plans here). */
export function clientsWithNorms(norms: readonly number[]): Map<string, ClientExamples> {
  return new Map(norms.map((n, i) => [`c${i}`, { count: 1, leaves: [Float32Array.of(n)] }]));
}

/** The problems checkPlan finds in a plan that it must refuse (each with its JSON pointer). */
export function planProblems(plan: unknown): readonly { path: string; message: string }[] {
  try {
    checkPlan(plan);
  } catch (e) {
    if (e instanceof AppError) return e.details ?? [];
    throw e;
  }
  throw new Error('the plan was accepted');
}

/** The sample standard deviation. */
export function sampleStd(xs: readonly number[]): number {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1));
}

export interface DpTestPlanOptions {
  readonly dims?: number;
  readonly rounds?: number;
  readonly targetClients?: number;
  readonly zeroRecord?: boolean;
  /** The dp section; record/indicator/clients_count/clip_broadcast are filled in. */
  readonly dp: Omit<DifferentialPrivacy, 'record' | 'indicator' | 'clients_count' | 'clip_broadcast'>;
  readonly schedule?: Partial<Plan['schedule']>;
}

export function buildDpTestPlan(o: DpTestPlanOptions): Plan {
  const dims = o.dims ?? 4;
  const adaptive = o.dp.clip.adaptive !== undefined;
  const element = f32([null]);
  const record = f32([dims]);
  const U = named(adaptive ? { record, clipped: f32() } : { record });
  const A = named(adaptive ? { record, clipped: f32(), clients: i32() } : { record, clients: i32() });
  const C = named({ clip: f32() });
  const S = record;
  const pb = new PlanBuilder();
  const addBatch = addBatchFn(pb, element);
  pb.computation('initialize', undefined, (b) => b.const('float32', [dims], 0));
  // The clip placeholder: the server writes each round's clip here.
  pb.computation('prepare', S, (b) => b.struct({ clip: b.scalar(0) }));
  pb.computation('work', workParam(element, C), (b, p) => {
    const n = b.fold(b.field(p, 'data'), b.scalar(0), addBatch, {}, 'norm');
    const unit = b.const('float32', [dims], [1, ...Array<number>(dims - 1).fill(0)]);
    const rec = o.zeroRecord ? b.const('float32', [dims], 0) : b.mul(unit, n, 'record');
    const clip = b.field(b.field(p, 'broadcast'), 'clip');
    const fields: Record<string, ReturnType<typeof b.scalar>> = { record: rec };
    if (adaptive) fields.clipped = b.where(b.less(clip, n), b.scalar(-0.5), b.scalar(0.5), 'clipped');
    return workResult(b, b.struct(fields));
  });
  pb.computation('zero', undefined, (b) => b.tree.zeros(A));
  pb.computation('accumulate', named({ accumulator: A, update: U }), (b, p) => {
    const acc = b.field(p, 'accumulator');
    const u = b.field(p, 'update');
    return b.struct({
      record: b.add(b.field(acc, 'record'), b.field(u, 'record')),
      ...(adaptive ? { clipped: b.add(b.field(acc, 'clipped'), b.field(u, 'clipped')) } : {}),
      clients: b.add(b.field(acc, 'clients'), b.scalar(1, 'int32')),
    });
  });
  pb.computation('merge', named({ a: A, b: A }), (b, p) => b.tree.add(b.field(p, 'a'), b.field(p, 'b')));
  pb.computation('report', A, (_b, a) => a);
  defineSecureParams(pb);
  pb.computation('update', updateParam(S, A), (b, p) => {
    const r = b.get(p, 'aggregates.report');
    const out = {
      record: b.field(r, 'record'),
      clients: b.field(r, 'clients'),
      ...(adaptive ? { clipped: b.field(r, 'clipped') } : {}),
    };
    return b.struct([b.field(r, 'record'), b.struct(out)]);
  });
  const dp: DifferentialPrivacy = {
    ...o.dp,
    record: 'record',
    clients_count: 'clients',
    clip_broadcast: 'clip',
    ...(adaptive ? { indicator: 'clipped' } : {}),
  };
  return pb.build({
    name: 'dp-test',
    client_data: { collection: 'norms', element, batch_size: 8 },
    schedule: { rounds: o.rounds ?? 3, target_clients: o.targetClients ?? 3, ...o.schedule },
    dp,
  });
}

/** The modulus of the secure dp test plan's sums: records are signed, read back below M/2. */
export const SECURE_DP_MODULUS = 2 ** 24;

export interface SecureDpTestPlanOptions extends Omit<DpTestPlanOptions, 'dp'> {
  /** Integer units per unit of the record. */
  readonly scale: number;
  readonly protocol: 'secagg+' | 'secagg' | 'none';
  readonly dp: Omit<
    DifferentialPrivacy,
    'record' | 'indicator' | 'clients_count' | 'clip_broadcast' | 'secure_sum' | 'scale'
  >;
}

/**
 * The dp test plan with its record in `secure_modular_sum` (V3): a client clips its norm n to the round's
 * clip and sends round(n scale) times the first unit vector, and 1 as its count; U, A and R are empty.
 * update reads the noisy sum back as signed (below M/2) and releases it divided by scale, as the state and
 * as X, with the count.
 */
export function buildSecureDpTestPlan(o: SecureDpTestPlanOptions): Plan {
  const dims = o.dims ?? 4;
  const element = f32([null]);
  const V3 = named({ record: i32([dims]), clients: i32() });
  const C = named({ clip: f32() });
  const S = f32([dims]);
  const EMPTY = named({});
  const pb = new PlanBuilder();
  const addBatch = addBatchFn(pb, element);
  pb.computation('initialize', undefined, (b) => b.const('float32', [dims], 0));
  pb.computation('prepare', S, (b) => b.struct({ clip: b.scalar(0) }));
  pb.computation('work', workParam(element, C), (b, p) => {
    const n = b.fold(b.field(p, 'data'), b.scalar(0), addBatch, {}, 'norm');
    const clipped = b.minimum(n, b.field(b.field(p, 'broadcast'), 'clip'), 'clipped');
    const units = b.cast(b.add(b.mul(clipped, o.scale), 0.5), 'int32', 'units');
    const unit = b.const('int32', [dims], [1, ...Array<number>(dims - 1).fill(0)]);
    return workResult(b, b.struct([]), {
      v3: b.struct({ record: b.mul(unit, units, 'record'), clients: b.scalar(1, 'int32') }),
    });
  });
  pb.computation('zero', undefined, (b) => b.struct([]));
  pb.computation('accumulate', named({ accumulator: EMPTY, update: EMPTY }), (b, p) =>
    b.field(p, 'accumulator'),
  );
  pb.computation('merge', named({ a: EMPTY, b: EMPTY }), (b, p) => b.field(p, 'a'));
  pb.computation('report', EMPTY, (_b, a) => a);
  defineSecureParams(pb, { modulus: SECURE_DP_MODULUS });
  pb.computation('update', updateParam(S, EMPTY, [EMPTY, EMPTY, V3]), (b, p) => {
    const sum = b.get(p, 'aggregates.modular_sum');
    const s = b.field(sum, 'record');
    const signed = b.where(
      b.greater(s, b.scalar(SECURE_DP_MODULUS / 2, 'int32')),
      b.sub(s, b.scalar(SECURE_DP_MODULUS, 'int32')),
      s,
    );
    const record = b.div(b.cast(signed, 'float32'), o.scale, 'record');
    return b.struct([record, b.struct({ record, clients: b.field(sum, 'clients') })]);
  });
  const secure_aggregation =
    o.protocol === 'none'
      ? { protocol: o.protocol }
      : { protocol: o.protocol, sharing_timeout_s: 60, unmasking_timeout_s: 60 };
  return pb.build({
    name: 'dp-secure-test',
    client_data: { collection: 'norms', element, batch_size: 8 },
    schedule: {
      rounds: o.rounds ?? 3,
      target_clients: o.targetClients ?? 3,
      ...o.schedule,
      secure_aggregation,
    } as Plan['schedule'],
    dp: {
      ...o.dp,
      record: 'record',
      clients_count: 'clients',
      clip_broadcast: 'clip',
      secure_sum: 'modulus',
      scale: o.scale,
    },
  });
}
