import Ajv from 'ajv';
import * as tf from '@tensorflow/tfjs';
import computationSchema from '../../../schemas/computation.schema.json';
import typeSchema from '../../../schemas/type.schema.json';
import { Interpreter } from '../interpreter';
import { sequenceType, structType, tensorType, type TffType } from '../types';
import { isStruct, sequenceValue, structValue, type Value } from '../value';
import { BuildError, ComputationBuilder, PlanBuilder } from '.';

const f32 = (shape: (number | null)[] = []) => tensorType('float32', shape);
const i32 = (shape: (number | null)[] = []) => tensorType('int32', shape);
const named = (fields: Record<string, TffType>) => structType(Object.entries(fields));

// A fresh ajv, as the brief asks, so the test does not depend on the project's shared instance.
const ajv = new Ajv({ allErrors: true, strict: false });
ajv.addSchema(typeSchema);
const validateComputation = ajv.compile(computationSchema);

function expectValid(comp: unknown): void {
  const ok = validateComputation(comp);
  expect(validateComputation.errors ?? []).toEqual([]);
  expect(ok).toBe(true);
}

function opsOf(comp: { nodes: { op: string }[] }): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of comp.nodes) counts[n.op] = (counts[n.op] ?? 0) + 1;
  return counts;
}

describe('ComputationBuilder', () => {
  it('emits schema-valid JSON with the types it tracked', () => {
    const b = new ComputationBuilder('work', named({ x: f32([null, 3]), w: f32([3, 2]) }));
    const y = b.relu(b.add(b.matmul(b.field(b.param, 'x'), b.field(b.param, 'w')), 1), 'hidden');
    expect(y.type).toEqual(f32([null, 2]));
    const s = b.struct({ y, total: b.reduceSum(y) });
    expect(s.type).toEqual(named({ y: f32([null, 2]), total: f32() }));
    const comp = b.finish(s);
    expectValid(comp);
    expect(comp.parameter).toEqual({ name: 'arg', type: named({ x: f32([null, 3]), w: f32([3, 2]) }) });
    expect(comp.result).toBe(s.name);
    const names = comp.nodes.map((n) => n.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain('x_1');
    expect(names.some((n) => /^hidden_\d+$/.test(n))).toBe(true);
    // The number 1 became a float32 scalar const, matching the other argument's dtype.
    expect(comp.nodes.find((n) => n.op === 'const')?.attrs).toEqual({
      dtype: 'float32',
      shape: [],
      value: 1,
    });
  });

  it('rejects a dtype mismatch at build time, naming computation, node and op', () => {
    const b = new ComputationBuilder('accumulate', named({ a: f32(), n: i32() }));
    let caught: unknown;
    try {
      b.add(b.field(b.param, 'a'), b.field(b.param, 'n'));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(BuildError);
    const msg = (caught as Error).message;
    expect(msg).toMatch(/^accumulate: node "t\d+" \(add\(a_\d+: float32, n_\d+: int32\)\)/);
    expect(msg).toMatch(/int32/);
  });

  it('types a number from the numeric arguments, not from a bool condition', () => {
    const b = new ComputationBuilder('work', named({ x: f32([3]), n: i32([3]) }));
    const x = b.field(b.param, 'x');
    const n = b.field(b.param, 'n');
    const cond = b.greater(x, 0);
    expect(b.where(cond, x, 0).type).toEqual(f32([3]));
    expect(b.where(cond, 1, n).type).toEqual(i32([3]));
    // No numeric argument: where's values are float32.
    expect(b.where(cond, 0, 1).type).toEqual(f32([3]));
    const comp = b.finish(b.struct([b.where(cond, x, 0), b.where(cond, 1, n)]));
    expectValid(comp);
    const consts = comp.nodes
      .filter((c) => c.op === 'const')
      .map((c) => (c.attrs as { dtype: string }).dtype);
    // What finish keeps: greater's 0, then where's 0 (float32) and 1 (int32).
    expect(consts.sort()).toEqual(['float32', 'float32', 'int32']);
  });

  it('spells infinities "inf" and "-inf", and refuses them for int32', () => {
    const b = new ComputationBuilder('zero', undefined);
    const lo = b.scalar(-Infinity);
    const comp = b.finish(b.struct([lo, b.const('float32', [2], [Infinity, 1])]));
    expectValid(comp);
    const values = comp.nodes
      .filter((n) => n.op === 'const')
      .map((n) => (n.attrs as { value: unknown }).value);
    expect(values).toEqual(expect.arrayContaining(['-inf', ['inf', 1]]));
    expect(() => new ComputationBuilder('zero', undefined).scalar(-Infinity, 'int32')).toThrow(
      /not an integer/,
    );
  });

  it('rejects a wrong struct field, listing the fields there are', () => {
    const b = new ComputationBuilder('report', named({ sum: f32(), count: i32() }));
    expect(() => b.field(b.param, 'total')).toThrow(
      /report: field "total" of "arg": no such field in <sum=float32,count=int32> \(fields: sum, count\)/,
    );
    expect(() => b.field(b.param, 5)).toThrow(/report: field index 5/);
    expect(() => b.get(b.param, 'sum.x')).toThrow(/expected a struct, got float32/);
  });

  it('rejects bad attrs and unknown ops with the op named', () => {
    const b = new ComputationBuilder('work', f32([4]));
    expect(() => b.op('reduce_sum', [b.param], { axes: 'all' })).toThrow(
      /work: node "t\d+" \(reduce_sum\(arg: float32\[4\]\)\): attrs\/axes/,
    );
    expect(() => b.op('frobnicate', [b.param])).toThrow(/work: unknown op "frobnicate"/);
    expect(() => b.op('fold', [b.param])).toThrow(/structural/);
    expect(() => b.scalar(1.5, 'int32')).toThrow(/not an integer/);
  });

  it('rejects a handle from another computation', () => {
    const a = new ComputationBuilder('zero');
    const b = new ComputationBuilder('merge', f32());
    const h = a.scalar(1);
    expect(() => b.add(b.param, h)).toThrow(/merge: add arg 1 "t1" belongs to zero/);
  });

  it('shares one node between repeated reads of a field and repeated identical constants', () => {
    const b = new ComputationBuilder('c', named({ a: f32() }));
    expect(b.field(b.param, 'a')).toBe(b.field(b.param, 'a'));
    expect(b.scalar(2)).toBe(b.scalar(2));
    expect(b.scalar(2)).not.toBe(b.scalar(2, 'int32'));
  });
});

describe('tree helpers', () => {
  const W = named({ w: f32([2, 3]), inner: named({ b: f32([3]) }) });

  it('tree.add emits one add per leaf, the field reads, and one struct per level', () => {
    const b = new ComputationBuilder('merge', named({ x: W, y: W }));
    const out = b.tree.add(b.field(b.param, 'x'), b.field(b.param, 'y'));
    expect(out.type).toEqual(W);
    const comp = b.finish(out);
    expectValid(comp);
    // x, y, x.w, y.w, x.inner, y.inner, x.inner.b, y.inner.b = 8 field reads.
    expect(opsOf(comp)).toEqual({ field: 8, add: 2, struct: 2 });
    const adds = comp.nodes.filter((n) => n.op === 'add');
    expect(adds.map((n) => n.args)).toEqual([
      [expect.stringMatching(/^w_/), expect.stringMatching(/^w_/)],
      [expect.stringMatching(/^b_/), expect.stringMatching(/^b_/)],
    ]);
    const outer = comp.nodes.find((n) => n.name === comp.result)!;
    expect(outer.attrs).toEqual({ names: ['w', 'inner'] });
  });

  it('tree.scale shares one scalar const; tree.zeros and tree.zerosLike build the same structure', () => {
    const b = new ComputationBuilder('report', W);
    const scaled = b.tree.scale(b.param, 0.5);
    const comp = b.finish(scaled);
    expect(opsOf(comp)).toEqual({ const: 1, field: 3, mul: 2, struct: 2 });

    const z = new ComputationBuilder('zero');
    const zeros = z.tree.zeros(W);
    expect(zeros.type).toEqual(W);
    expect(opsOf(z.finish(zeros))).toEqual({ const: 2, struct: 2 });

    const zl = new ComputationBuilder('zl', W);
    const like = zl.tree.zerosLike(zl.param);
    expect(like.type).toEqual(W);
    expect(opsOf(zl.finish(like))).toEqual({ field: 3, zeros_like: 2, struct: 2 });
  });

  it('tree helpers refuse trees of different structure', () => {
    const b = new ComputationBuilder('merge', named({ x: W, y: named({ w: f32([2, 3]) }) }));
    expect(() => b.tree.add(b.field(b.param, 'x'), b.field(b.param, 'y'))).toThrow(
      /merge: tree.add: .* differ at the top: 2 vs 1 fields/,
    );
  });

  it('tree.leaves lists leaves depth first', () => {
    const b = new ComputationBuilder('c', W);
    expect(b.tree.leaves(b.param).map((h) => h.type)).toEqual([f32([2, 3]), f32([3])]);
  });
});

describe('PlanBuilder functions', () => {
  it('types fold, call, repeat and value_and_grad, and the interpreter agrees with the types', () => {
    const pb = new PlanBuilder();
    const addBatch = pb.fn('add_batch', named({ acc: f32(), batch: f32([null]) }), (b, p) =>
      b.add(b.field(p, 'acc'), b.reduceSum(b.field(p, 'batch'))),
    );
    const double = pb.fn('double', f32(), (b, x) => b.mul(x, 2));
    const sq = pb.fn('sq', named({ params: named({ w: f32([2]) }), rest: f32([2]) }), (b, p) =>
      b.reduceSum(b.square(b.sub(b.get(p, 'params.w'), b.field(p, 'rest')))),
    );
    const b = new ComputationBuilder('c', named({ data: sequenceType(f32([null])), w: f32([2]) }));
    const folded = b.fold(b.field(b.param, 'data'), b.scalar(0), addBatch, { epochs: 2 });
    const twice = b.repeat(folded, double, 3);
    const called = b.call(double, twice);
    const vg = b.valueAndGrad(sq, b.struct({ w: b.field(b.param, 'w') }), b.const('float32', [2], [1, 1]));
    expect(vg.grad.type).toEqual(named({ w: f32([2]) }));
    const out = b.struct({ called, value: vg.value, grad: b.get(vg.grad, 'w') });
    const comp = b.finish(out);
    expectValid(comp);
    expect(comp.nodes.find((n) => n.op === 'fold')?.attrs).toEqual({ fn: 'add_batch', epochs: 2 });

    const interp = new Interpreter(pb.functionTable);
    const arg = structValue([
      ['data', sequenceValue([tf.tensor1d([1, 2]), tf.tensor1d([3])])],
      ['w', tf.tensor1d([3, -1])],
    ]);
    const v = interp.run(comp, arg, { round: 1 }) as Value;
    if (!isStruct(v)) throw new Error('expected a struct');
    const get = (k: string) =>
      Array.from((v.fields.find((f) => f.name === k)!.value as tf.Tensor).dataSync());
    // fold twice over [1,2],[3] = 12; doubled 3 times = 96; doubled once more = 192.
    expect(get('called')).toEqual([192]);
    expect(get('value')).toEqual([4 + 4]);
    expect(get('grad')).toEqual([4, -4]);
  });

  it('rejects a fold whose function does not fit, and recursion by construction', () => {
    const pb = new PlanBuilder();
    const bad = pb.fn('bad', named({ acc: f32(), batch: i32([null]) }), (b, p) => b.field(p, 'acc'));
    const b = new ComputationBuilder('work', sequenceType(f32([null])));
    expect(() => b.fold(b.param, b.scalar(0), bad)).toThrow(
      /work: node "t\d+" \(fold bad\): the sequence element "arg" float32\[\?\] does not fit int32\[\?\]/,
    );
    expect(() => b.fold(b.param, b.scalar(0, 'int32'), bad)).toThrow(/initial accumulator/);
    expect(() => pb.fn('bad', f32(), (bb, x) => x)).toThrow(/defined twice/);
  });

  it('rejects value_and_grad of int32 params and of a non-scalar function', () => {
    const pb = new PlanBuilder();
    const vec = pb.fn('vec', named({ p: f32([2]), r: f32() }), (b, p) => b.field(p, 'p'));
    const b = new ComputationBuilder('work', named({ p: f32([2]), r: f32() }));
    expect(() => b.valueAndGrad(vec, b.field(b.param, 'p'), b.field(b.param, 'r'))).toThrow(
      /must return a float32 scalar/,
    );
  });

  it('keeps random_normal out of work, directly or through a function', () => {
    const pb = new PlanBuilder();
    const noise = pb.fn('noise', undefined, (b) => b.randomNormal([2], { seed: 1 }));
    expect(noise.serverOnly).toBe(true);
    expect(() => pb.computation('work', f32(), (b) => b.call(noise))).toThrow(
      /work: runs on clients .* random_normal/,
    );
    expect(() => pb.computation('update', f32(), (b) => b.call(noise))).not.toThrow();
  });

  it('refuses to build a plan with missing computations', () => {
    const pb = new PlanBuilder();
    pb.computation('initialize', undefined, (b) => b.struct([]));
    expect(() =>
      pb.build({
        name: 'p',
        client_data: { collection: 'c', element: f32([null]), batch_size: 1 },
        schedule: { rounds: 1, target_clients: 1 },
      }),
    ).toThrow(/computations not defined: prepare, work, zero/);
  });
});
