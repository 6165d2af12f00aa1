import { PlanBuilder } from '../../src/compute/builder';
import type { Plan, SecureAggregation } from '../../src/generated/plan';
import {
  defineSecureParams,
  EMPTY,
  i32,
  named,
  updateParam,
  workParam,
  workResult,
} from '../../src/plans/common';

/** The secure-sum parameters of {@link threeSumsPlan}. */
export const THREE_SUMS = { bitwidth: 8, maxInput: 1000, modulus: 97 } as const;

/** What one client with examples summing to `s` (0 <= s <= 255) puts into V1, V2 and V3. */
export function threeSumsOf(s: number): { v1: number; v2: number; v3: number } {
  return { v1: s, v2: Math.min(4 * s, THREE_SUMS.maxInput), v3: 7 * s };
}

/**
 * A plan that sends a client's int32 sum s through all three secure sums: V1 = s (bitwidth 8, so s = 255
 * is the largest input), V2 = min(4 s, 1000) (max_input 1000, reached from s = 250), V3 = 7 s (modulus 97,
 * which wraps). U is empty: nothing leaves a client in the clear. X = <v1, v2, v3>, the released sums.
 */
export function threeSumsPlan(
  population: string,
  schedule: Plan['schedule'],
  secure: SecureAggregation = { protocol: 'secagg+' },
): Plan {
  const element = i32([null]);
  const pb = new PlanBuilder();
  const addBatch = pb.fn('add_batch', named({ sum: i32(), batch: element }), (b, p) =>
    b.add(b.field(p, 'sum'), b.reduceSum(b.field(p, 'batch')), 'sum'),
  );
  pb.computation('initialize', undefined, (b) => b.struct([]));
  pb.computation('prepare', EMPTY, (_b, s) => s);
  pb.computation('work', workParam(element, EMPTY), (b, p) => {
    const s = b.fold(b.field(p, 'data'), b.scalar(0, 'int32'), addBatch, {}, 'client_sum');
    return workResult(b, b.struct([]), {
      v1: s,
      v2: b.minimum(b.mul(s, b.scalar(4, 'int32')), b.scalar(THREE_SUMS.maxInput, 'int32')),
      v3: b.mul(s, b.scalar(7, 'int32')),
    });
  });
  pb.computation('zero', undefined, (b) => b.struct([]));
  pb.computation('accumulate', named({ accumulator: EMPTY, update: EMPTY }), (b, p) =>
    b.field(p, 'accumulator'),
  );
  pb.computation('merge', named({ a: EMPTY, b: EMPTY }), (b, p) => b.field(p, 'a'));
  pb.computation('report', EMPTY, (_b, a) => a);
  defineSecureParams(pb, THREE_SUMS);
  pb.computation('update', updateParam(EMPTY, EMPTY, [i32(), i32(), i32()]), (b, p) =>
    b.struct([
      b.field(p, 'state'),
      b.struct({
        v1: b.get(p, 'aggregates.bitwidth_sum'),
        v2: b.get(p, 'aggregates.max_input_sum'),
        v3: b.get(p, 'aggregates.modular_sum'),
      }),
    ]),
  );
  return pb.build({
    name: 'three-secure-sums',
    client_data: { collection: population, element, batch_size: 8 },
    schedule: { ...schedule, secure_aggregation: secure },
  });
}
