/**
 * Plans that once crashed validation or slipped through it (issue 7), built from the hand-written sum plan
 * fixture and the plan builder, for the unit tests of checkPlan and the HTTP tests of the API alike.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PlanBuilder } from '../../src/compute/builder';
import type { Plan } from '../../src/generated/plan';
import {
  defineSecureParams,
  EMPTY,
  i32,
  named,
  updateParam,
  workParam,
  workResult,
} from '../../src/plans/common';

// Cases reach into arbitrary corners of the plan JSON to break it; typing every corner would add nothing.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

const fixture: Json = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'sum-plan.json'), 'utf8'),
);

/** A fresh copy of the hand-written sum plan, changed by `f`. */
export function sumPlan(f: (p: Json) => void = () => undefined): Json {
  const p = structuredClone(fixture);
  f(p);
  return p;
}

/** A type nested `depth` structs deep around a float32[?] tensor. */
export function nestedType(depth: number): Json {
  let t: Json = { kind: 'tensor', dtype: 'float32', shape: [null] };
  for (let i = 0; i < depth; i++) t = { kind: 'struct', fields: [{ name: 'f', type: t }] };
  return t;
}

/** The sum plan whose client data element is nested `depth` structs deep (2,000 overflowed ajv's stack). */
export function deeplyNestedPlan(depth = 2000): Json {
  return sumPlan((p) => (p.client_data.element = nestedType(depth)));
}

/**
 * {@link deeplyNestedPlan} as request text, written out directly: JSON.stringify itself recurses, and
 * overflows on such a document under jest's smaller stack.
 */
export function deeplyNestedPlanText(depth = 2000): string {
  const open = '{"kind":"struct","fields":[{"name":"f","type":';
  const element = `${open.repeat(depth)}{"kind":"tensor","dtype":"float32","shape":[null]}${'}]}'.repeat(depth)}`;
  return JSON.stringify(sumPlan((p) => (p.client_data.element = 'ELEMENT'))).replace('"ELEMENT"', element);
}

/** The sum plan with `work` calling a function that the plan does not define. */
export function callOfUndefined(fn: string): Json {
  return sumPlan((p) => p.computations.work.nodes.splice(0, 0, { name: 'ghost', op: 'call', attrs: { fn } }));
}

/**
 * The sum plan with its one function (`add_batch`) renamed. The text is edited, not the object, so that a
 * "__proto__" key is an own property exactly as in a request body that JSON.parse read.
 */
export function renamedFunctionPlan(name: string): Json {
  const text = JSON.stringify(sumPlan()).replace(/"add_batch"/g, JSON.stringify(name));
  return JSON.parse(text);
}

/** The sum plan whose `zero` starts with a float32 const literal of `n` entries. */
export function hugeConstPlan(n: number): Json {
  return sumPlan((p) =>
    p.computations.zero.nodes.splice(0, 0, {
      name: 'huge',
      op: 'const',
      attrs: { dtype: 'float32', shape: [n], value: new Array<number>(n).fill(0) },
    }),
  );
}

/** Secure-sum parameters of {@link secureSumPlan}. */
export interface SecureConstants {
  readonly bitwidth: number;
  readonly maxInput: number;
  readonly modulus: number;
}

/**
 * A federated sum that sends each client's int32 sum through all three secure sums (V1, V2, V3), with the
 * given constant parameters. `check: false` returns the plan without running checkPlan, as a hostile author
 * would submit it.
 */
export function secureSumPlan(c: SecureConstants, check = false): Plan {
  const element = i32([null]);
  const pb = new PlanBuilder();
  const addBatch = pb.fn('add_batch', named({ sum: i32(), batch: element }), (b, p) =>
    b.add(b.field(p, 'sum'), b.reduceSum(b.field(p, 'batch')), 'sum'),
  );
  pb.computation('initialize', undefined, (b) => b.struct([]));
  pb.computation('prepare', EMPTY, (_b, s) => s);
  pb.computation('work', workParam(element, EMPTY), (b, p) => {
    const sum = b.fold(b.field(p, 'data'), b.scalar(0, 'int32'), addBatch, {}, 'client_sum');
    return workResult(b, b.struct([]), { v1: sum, v2: sum, v3: sum });
  });
  pb.computation('zero', undefined, (b) => b.struct([]));
  pb.computation('accumulate', named({ accumulator: EMPTY, update: EMPTY }), (b, p) =>
    b.field(p, 'accumulator'),
  );
  pb.computation('merge', named({ a: EMPTY, b: EMPTY }), (b, p) => b.field(p, 'a'));
  pb.computation('report', EMPTY, (_b, a) => a);
  defineSecureParams(pb, c);
  pb.computation('update', updateParam(EMPTY, EMPTY, [i32(), i32(), i32()]), (b, p) =>
    b.struct([b.field(p, 'state'), b.struct({ sum: b.get(p, 'aggregates.bitwidth_sum') })]),
  );
  return pb.build(
    {
      name: 'secure-constants',
      client_data: { collection: 'numbers', element, batch_size: 4 },
      schedule: {
        rounds: 1,
        target_clients: 2,
        min_reports: 2,
        min_clients_in_aggregate: 2,
        secure_aggregation: { protocol: 'none' },
      },
    },
    { check },
  );
}
