import { bytesToBase64, writeBundle } from '../src/codec';
import { AppError, type ErrorCode } from '../src/errors';
import { checkPlan } from '../src/plan/validate';
import basePlan from './fixtures/sum-plan.json';

// Each case breaks the hand-written sum plan in one way and states where the error must point and what it
// must say. The plan itself must pass, or these cases would prove nothing.
// Cases reach into arbitrary corners of the plan JSON to break it; typing every corner would add nothing.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

function mutate(f: (p: Json) => void): unknown {
  const p = structuredClone(basePlan) as Json;
  f(p);
  return p;
}
function node(comp: Json, name: string): Json {
  const n = (comp.nodes as Json[]).find((x) => x.name === name);
  if (!n) throw new Error(`fixture has no node ${name}`);
  return n;
}

const cases: { name: string; plan: unknown; code: ErrorCode; path: string; message: RegExp }[] = [
  {
    name: 'missing merge computation',
    plan: mutate((p) => delete (p.computations as Record<string, unknown>).merge),
    code: 'PLAN_SCHEMA_INVALID',
    path: '/computations',
    message: /missing required property "merge"/,
  },
  {
    name: 'unknown top-level property',
    plan: mutate((p) => (p.extra = 1)),
    code: 'PLAN_SCHEMA_INVALID',
    path: '/',
    message: /unknown property "extra"/,
  },
  {
    name: 'unsupported dtype in the data spec',
    plan: mutate((p) => ((p.client_data.element as { dtype: string }).dtype = 'float64')),
    code: 'PLAN_SCHEMA_INVALID',
    path: '/client_data/element/dtype',
    message: /must be one of "float32", "int32", "bool"/,
  },
  {
    name: 'arg not defined before use',
    plan: mutate((p) => (node(p.computations.accumulate, 's').args = ['as', 'missing'])),
    code: 'PLAN_TYPE_ERROR',
    path: '/computations/accumulate/nodes/6/args/1',
    message: /accumulate: node "s" \(add\): arg 1 "missing" is not defined/,
  },
  {
    name: 'duplicate node name',
    plan: mutate((p) => (node(p.computations.merge, 'bs').name = 'as')),
    code: 'PLAN_TYPE_ERROR',
    path: '/computations/merge/nodes/3/name',
    message: /merge: node "as" \(field\): the name is already defined/,
  },
  {
    name: 'unknown op',
    plan: mutate((p) => (node(p.computations.work, 'u').op = 'frobnicate')),
    code: 'PLAN_TYPE_ERROR',
    path: '/computations/work/nodes/3',
    message: /work: node "u" \(frobnicate\): unknown op "frobnicate"/,
  },
  {
    name: 'dtype mismatch in a binary op',
    plan: mutate(
      (p) => ((node(p.computations.accumulate, 'one').attrs as { dtype: string }).dtype = 'float32'),
    ),
    code: 'PLAN_TYPE_ERROR',
    path: '/computations/accumulate/nodes/7',
    message: /accumulate: node "c" \(add\): .*float32.*int32|int32.*float32/,
  },
  {
    name: 'shapes that do not broadcast',
    plan: mutate((p) => {
      const a = node(p.computations.zero, 's').attrs as { shape: number[]; value: number };
      a.shape = [2];
      p.computations.zero.nodes.splice(1, 0, {
        name: 'w',
        op: 'const',
        attrs: { dtype: 'float32', shape: [3], value: 1 },
      });
      p.computations.zero.nodes.splice(2, 0, { name: 'bad', op: 'add', args: ['s', 'w'] });
    }),
    code: 'PLAN_TYPE_ERROR',
    path: '/computations/zero/nodes/2',
    message: /zero: node "bad" \(add\): .*(broadcast|shape)/i,
  },
  {
    name: 'const value of the wrong length',
    plan: mutate((p) =>
      Object.assign(node(p.computations.zero, 's').attrs as object, { shape: [3], value: [1, 2] }),
    ),
    code: 'PLAN_TYPE_ERROR',
    path: '/computations/zero/nodes/0',
    message: /zero: node "s" \(const\)/,
  },
  {
    name: 'field that the struct does not have',
    plan: mutate((p) => ((node(p.computations.accumulate, 'us').attrs as { name: string }).name = 'total')),
    code: 'PLAN_TYPE_ERROR',
    path: '/computations/accumulate/nodes/4',
    message: /no field "total" in <sum=float32>/,
  },
  {
    name: 'work returns three values instead of four',
    plan: mutate((p) => (node(p.computations.work, 'out').args = ['u', 'none', 'none'])),
    code: 'PLAN_TYPE_ERROR',
    path: '/computations/work',
    message: /work: must return a 4-field struct <U, V1, V2, V3>/,
  },
  {
    name: "accumulate does not accept work's update",
    plan: mutate((p) => {
      const t = (
        p.computations.accumulate as unknown as {
          parameter: { type: { fields: { type: { fields: { name: string }[] } }[] } };
        }
      ).parameter.type;
      t.fields[1]!.type.fields[0]!.name = 'total';
      (node(p.computations.accumulate, 'us').attrs as { name: string }).name = 'total';
    }),
    code: 'PLAN_TYPE_ERROR',
    path: '/computations/accumulate',
    message: /accumulate: the second parameter field \(update\) does not accept <sum=float32>/,
  },
  {
    name: 'update returns a state of another type',
    plan: mutate((p) => {
      p.computations.update.nodes.splice(6, 0, {
        name: 'nextf',
        op: 'cast',
        args: ['next'],
        attrs: { dtype: 'float32' },
      });
      node(p.computations.update, 's2').args = ['nextf'];
    }),
    code: 'PLAN_TYPE_ERROR',
    path: '/computations/update',
    message: /update: .*server state.*dtype float32 is not int32/,
  },
  {
    name: 'report does not accept the merged accumulator',
    plan: mutate((p) => {
      (p.computations.report as unknown as { parameter: { type: unknown } }).parameter.type = {
        kind: 'struct',
        fields: [{ name: 'sum', type: { kind: 'tensor', dtype: 'float32', shape: [] } }],
      };
    }),
    code: 'PLAN_TYPE_ERROR',
    path: '/computations/report',
    message: /report: the parameter does not accept <sum=float32,count=int32>/,
  },
  {
    name: 'recursive function',
    plan: mutate((p) => {
      const f = p.functions.add_batch;
      f.nodes.push({ name: 'again', op: 'call', args: ['p'], attrs: { fn: 'add_batch' } });
    }),
    code: 'PLAN_TYPE_ERROR',
    path: '/functions/add_batch/nodes/4/attrs/fn',
    message: /function "add_batch" calls itself/,
  },
  {
    name: 'server-only random noise in work',
    plan: mutate((p) =>
      p.computations.work.nodes.splice(2, 0, { name: 'noise', op: 'random_normal', attrs: { shape: [] } }),
    ),
    code: 'PLAN_TYPE_ERROR',
    path: '/computations/work',
    message:
      /work runs on clients or workers, so it may not use the server-only node "noise" \(random_normal\)/,
  },
  {
    name: 'tensor larger than the element limit',
    plan: mutate((p) =>
      p.computations.zero.nodes.splice(0, 0, {
        name: 'huge',
        op: 'const',
        attrs: { dtype: 'float32', shape: [100000, 1000], value: 0 },
      }),
    ),
    code: 'PLAN_LIMIT_EXCEEDED',
    path: '/computations/zero/nodes/0',
    message:
      /zero: node "huge" \(const\): tensor float32\[100000,1000\] has more elements than the limit of 16777216/,
  },
  {
    name: 'fold epochs beyond the loop limit',
    plan: mutate((p) =>
      Object.assign(node(p.computations.work, 'total').attrs as object, { epochs: 1_000_000 }),
    ),
    code: 'PLAN_LIMIT_EXCEEDED',
    path: '/computations/work/nodes/2',
    message: /attr epochs: 1000000 is more than the limit of 10000/,
  },
  {
    name: 'attrs that break the op schema',
    plan: mutate((p) => (node(p.functions.add_batch, 's').attrs = { axes: 'all' })),
    code: 'PLAN_TYPE_ERROR',
    path: '/functions/add_batch/nodes/2/attrs/axes',
    message: /function add_batch: node "s" \(reduce_sum\): attrs\/axes must be array/,
  },
  {
    name: 'neither initialize nor initial_state',
    plan: mutate((p) => delete (p as Record<string, unknown>).initialize),
    code: 'PLAN_TYPE_ERROR',
    path: '',
    message: /exactly one of "initialize" and "initial_state"/,
  },
  {
    name: 'min_reports above target_clients',
    plan: mutate((p) => (p.schedule.min_reports = 5)),
    code: 'PLAN_TYPE_ERROR',
    path: '/schedule/min_reports',
    message: /min_reports \(5\) is more than target_clients \(3\)/,
  },
  {
    name: 'min_clients_in_aggregate above target_clients',
    plan: mutate((p) => (p.schedule.min_clients_in_aggregate = 4)),
    code: 'PLAN_TYPE_ERROR',
    path: '/schedule/min_clients_in_aggregate',
    message:
      /min_clients_in_aggregate \(4\) is more than target_clients \(3\), so no round could ever be released/,
  },
  {
    name: 'secure-sum bitwidth of the wrong dtype',
    plan: mutate((p) => {
      p.computations.secure_sum_bitwidth.nodes = [
        { name: 'b', op: 'const', attrs: { dtype: 'float32', shape: [], value: 8 } },
      ];
      p.computations.secure_sum_bitwidth.result = 'b';
    }),
    code: 'PLAN_TYPE_ERROR',
    path: '/computations/secure_sum_bitwidth',
    message: /must return one int32 scalar or <>/,
  },
  {
    name: 'fold function that does not accept the batches',
    plan: mutate((p) => {
      p.functions.add_batch.parameter.type.fields[1].type.shape = [];
    }),
    code: 'PLAN_TYPE_ERROR',
    path: '/computations/work/nodes/2',
    message:
      /work: node "total" \(fold\): the sequence element: shape float32\[\?\] does not match float32 \(rank 1 vs 0\)/,
  },
];

describe('checkPlan', () => {
  test('accepts the hand-written sum plan and derives the form types', () => {
    const { types } = checkPlan(basePlan);
    expect(types.S).toEqual({
      kind: 'struct',
      fields: [{ name: 'rounds', type: { kind: 'tensor', dtype: 'int32', shape: [] } }],
    });
    expect(types.U).toEqual({
      kind: 'struct',
      fields: [{ name: 'sum', type: { kind: 'tensor', dtype: 'float32', shape: [] } }],
    });
    expect(types.D).toEqual({
      kind: 'sequence',
      element: { kind: 'tensor', dtype: 'float32', shape: [null] },
    });
  });

  test(`rejects ${cases.length} malformed or ill-typed plans, each where the problem is`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  test.each(cases)('rejects: $name', ({ plan, code, path, message }) => {
    let error: unknown;
    try {
      checkPlan(plan);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AppError);
    const e = error as AppError;
    expect(e.code).toBe(code);
    const hit = e.details.find((d) => d.path === path && message.test(d.message));
    if (!hit)
      throw new Error(
        `no detail at ${path} matching ${message}; got:\n${JSON.stringify(e.details, null, 1)}`,
      );
  });
});

describe('checkPlan with an initial_state bundle', () => {
  const withState = (tensors: Parameters<typeof writeBundle>[0]) => {
    const p = structuredClone(basePlan) as Json;
    delete p.initialize;
    p.initial_state = { encoding: 'safetensors+base64', data: bytesToBase64(writeBundle(tensors)) };
    return p;
  };

  test('accepts a bundle that holds the server state prepare takes', () => {
    const { types } = checkPlan(
      withState([{ name: 'rounds', dtype: 'int32', shape: [], data: Int32Array.of(4) }]),
    );
    expect(types.S).toEqual(basePlan.computations.prepare.parameter.type);
  });

  test('rejects a bundle of another type, pointing at the data', () => {
    let error: unknown;
    try {
      checkPlan(withState([{ name: 'rounds', dtype: 'float32', shape: [], data: Float32Array.of(4) }]));
    } catch (e) {
      error = e;
    }
    expect((error as AppError).details).toContainEqual({
      path: '/initial_state/data',
      message: expect.stringMatching(
        /initial_state is not a bundle of the server state <rounds=int32>: rounds: .*float32/,
      ),
    });
  });
});
