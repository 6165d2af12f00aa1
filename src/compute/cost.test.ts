import type { Computation, Node } from '../generated/computation';
import {
  CostBudgetError,
  CostModel,
  CostShapeError,
  GRADIENT_FLOPS,
  GRADIENT_MEMORY,
  type CostOptions,
} from './cost';
import { OP_NAMES } from './ops';
import { OP_COSTS } from './ops/costs';
import { sequenceType, structType, tensorType, type TffType } from './types';

// Every expected number is worked out by hand from the model's rules (cost.ts): float32 and int32 take 4
// bytes an element, bool 1; every tensor made in a scope stays alive until the scope ends.

const f32 = (...shape: (number | null)[]) => tensorType('float32', shape);
const n = (name: string, op: string, args: string[] = [], attrs?: Record<string, unknown>): Node => ({
  name,
  op,
  args,
  ...(attrs ? { attrs } : {}),
});
const zeros = (name: string, shape: number[]) => n(name, 'const', [], { dtype: 'float32', shape, value: 0 });
const comp = (nodes: Node[], result: string, parameter?: { name: string; type: TffType }): Computation => ({
  ...(parameter ? { parameter } : {}),
  nodes,
  result,
});

function model(functions: Record<string, Computation> = {}, over: Partial<CostOptions> = {}): CostModel {
  return new CostModel({
    functions,
    batchSize: 8,
    sequenceLength: 10,
    maxTensorElements: 1000,
    maxVisits: 10_000,
    ...over,
  });
}

describe('the static cost model', () => {
  test('elementwise ops: one FLOP per result element, results alive until the end; the parameter is free', () => {
    const c = comp([n('a', 'add', ['x', 'x']), n('b', 'mul', ['a', 'x'])], 'b', { name: 'x', type: f32(10) });
    const cost = model().estimate(c);
    expect(cost).toMatchObject({ flops: 20, peakBytes: 80, retainedBytes: 80, peakAt: 1 });
    expect(cost.nodes.map((x) => x.retainedBytes)).toEqual([40, 40]);
  });

  test('matmul costs 2mnk; a reshape is a view of its input', () => {
    const c = comp(
      [
        zeros('a', [3, 4]),
        zeros('b', [4, 5]),
        n('m', 'matmul', ['a', 'b']),
        n('t', 'matmul', ['a', 'a'], { transpose_a: true }),
        n('r', 'reshape', ['m'], { shape: [-1] }),
      ],
      'r',
    );
    const cost = model().estimate(c);
    // consts 12 + 20, [3,4]x[4,5] = 2*3*5*4 = 120, [4,3]x[3,4] = 2*4*4*3 = 96, reshape 1
    expect(cost.flops).toBe(12 + 20 + 120 + 96 + 1);
    // 48 + 80 + 60 + 64 bytes, the reshape adds none
    expect(cost.peakBytes).toBe(48 + 80 + 60 + 64);
  });

  test('unknown dimensions take the batch size before shapes are inferred', () => {
    const data = structType([
      ['data', sequenceType(f32(null, 3))],
      ['c', structType([])],
    ]);
    const c = comp(
      [
        n('d', 'field', ['p'], { name: 'data' }),
        n('one', 'const', [], { dtype: 'float32', shape: [], value: 1 }),
      ],
      'd',
      { name: 'p', type: data },
    );
    expect(model().estimate(c)).toMatchObject({ flops: 1, peakBytes: 4 });
    const flat = comp([n('r', 'reshape', ['x'], { shape: [-1] }), n('s', 'square', ['r'])], 's', {
      name: 'x',
      type: f32(null, 3),
    });
    // [8,3] reshaped to [24]: the square has 24 elements, not 8
    expect(model().estimate(flat)).toMatchObject({ flops: 1 + 24, peakBytes: 96 });
  });

  test('fold: FLOPs times epochs x batches; memory of one step plus the previous state', () => {
    const step = comp(
      [
        n('acc', 'field', ['p'], { index: 0 }),
        n('x', 'field', ['p'], { index: 1 }),
        n('r', 'reduce_sum', ['x'], { axes: [0] }),
        n('next', 'add', ['acc', 'r']),
      ],
      'next',
      {
        name: 'p',
        type: structType([
          ['acc', f32(4)],
          ['x', f32(null, 4)],
        ]),
      },
    );
    const work = comp(
      [
        n('d', 'field', ['p'], { index: 0 }),
        zeros('z', [4]),
        n('f', 'fold', ['d', 'z'], { fn: 'step', epochs: 2 }),
      ],
      'f',
      { name: 'p', type: structType([['data', sequenceType(f32(null, 4))]]) },
    );
    const cost = model({ step }).estimate(work);
    // step: reduce_sum of [8,4] = 32, add 4; 2 epochs x 10 batches = 20 steps; const 4
    expect(cost.flops).toBe(4 + 20 * 36);
    // step keeps r and next (16 + 16); the fold adds the previous state (16); the const before it 16
    expect(cost.nodes[2]).toMatchObject({ retainedBytes: 16, peakBytes: 16 + 32, via: '20 x function step' });
    expect(cost.peakBytes).toBe(16 + 48);
  });

  test('repeat multiplies FLOPs, not memory; a callee is costed with the shapes it is given', () => {
    const sq = comp([n('y', 'mul', ['x', 'x'])], 'y', { name: 'x', type: f32(null) });
    const c = comp([zeros('c', [1000]), n('r', 'repeat', ['c'], { fn: 'sq', count: 7 })], 'r');
    const cost = model({ sq }).estimate(c);
    // [?] is the caller's [1000], not the batch size 8
    expect(cost.flops).toBe(1000 + 7 * 1000);
    // const 4000, then the previous state 4000 and the step's result 4000
    expect(cost.peakBytes).toBe(4000 + 8000);
    expect(
      model({ sq }).estimate(
        comp([zeros('c', [1000]), n('r', 'repeat', ['c'], { fn: 'sq', count: 0 })], 'r'),
      ),
    ).toMatchObject({ flops: 1000, peakBytes: 4000 });
  });

  test('call runs in the caller scope: every tensor of the callee stays alive', () => {
    const f = comp([n('a', 'add', ['x', 'x']), n('b', 'add', ['a', 'a'])], 'b', {
      name: 'x',
      type: f32(null),
    });
    const c = comp(
      [zeros('c', [100]), n('r', 'call', ['c'], { fn: 'f' }), n('s', 'call', ['r'], { fn: 'f' })],
      's',
    );
    const cost = model({ f }).estimate(c);
    expect(cost.flops).toBe(100 + 200 + 200);
    expect(cost.peakBytes).toBe(400 + 800 + 800);
    expect(cost.nodes[1]).toMatchObject({ retainedBytes: 800, via: 'function f' });
  });

  test('value_and_grad: a multiple of the forward pass', () => {
    const loss = comp(
      [
        n('w', 'field', ['p'], { index: 0 }),
        n('x', 'field', ['p'], { index: 1 }),
        n('m', 'mul', ['w', 'x']),
        n('l', 'reduce_sum', ['m']),
      ],
      'l',
      {
        name: 'p',
        type: structType([
          ['w', f32(5)],
          ['x', f32(5)],
        ]),
      },
    );
    const c = comp(
      [zeros('w', [5]), zeros('x', [5]), n('g', 'value_and_grad', ['w', 'x'], { fn: 'loss' })],
      'g',
    );
    const cost = model({ loss }).estimate(c);
    // forward: mul 5 + reduce 5 = 10 FLOPs, 20 + 4 bytes; the result is a scalar and a [5] gradient
    expect(cost.flops).toBe(5 + 5 + GRADIENT_FLOPS * 10);
    expect(cost.nodes[2]).toMatchObject({ retainedBytes: 24, peakBytes: GRADIENT_MEMORY * 24 + 24 });
    expect(cost.peakBytes).toBe(40 + GRADIENT_MEMORY * 24 + 24);
    expect(cost.result).toEqual(
      structType([
        ['value', f32()],
        ['grad', f32(5)],
      ]),
    );
  });

  test('a loop whose state grows is costed at the per-tensor limit', () => {
    const grow = comp([n('y', 'concat', ['x', 'x'], { axis: 0 })], 'y', { name: 'x', type: f32(null) });
    const cost = model({ grow }).estimate(
      comp([zeros('c', [2]), n('r', 'repeat', ['c'], { fn: 'grow', count: 3 })], 'r'),
    );
    // the state is taken as [1000] (maxTensorElements), each step concatenates it to [2000]
    expect(cost.flops).toBe(2 + 3 * 2000);
    expect(cost.nodes[1]!.retainedBytes).toBe(4000);
  });

  test('kernels that keep intermediates count them: norm, one_hot, broadcasting maximum', () => {
    const c = comp(
      [
        zeros('x', [10, 10]),
        n('nrm', 'norm', ['x']),
        n('i', 'const', [], { dtype: 'int32', shape: [10], value: 0 }),
        n('h', 'one_hot', ['i'], { depth: 3 }),
        n('mx', 'maximum', ['x', 'nrm']),
      ],
      'mx',
    );
    const cost = model().estimate(c);
    // norm: result 4 + scratch 400 + 6*4; one_hot: 120 + 30*5; maximum: 400 + one broadcast copy 400
    expect(cost.nodes.map((x) => x.retainedBytes)).toEqual([400, 4 + 400 + 24, 40, 120 + 150, 800]);
  });

  test('the estimate stops at its visit budget', () => {
    // f0 calls f1 with two shapes, f1 calls f2 with two shapes each, ...: memoised per shape, the number of
    // specialisations grows only with the distinct shapes, but it still takes a few hundred visits
    const fns: Record<string, Computation> = {};
    for (let k = 0; k < 12; k++) {
      fns[`f${k}`] = comp(
        k === 11
          ? [n('y', 'neg', ['x'])]
          : [
              n('a', 'call', ['x'], { fn: `f${k + 1}` }),
              n('c', 'concat', ['x', 'x'], { axis: 0 }),
              n('b', 'call', ['c'], { fn: `f${k + 1}` }),
              n('y', 'neg', ['x']),
            ],
        'y',
        { name: 'x', type: f32(null) },
      );
    }
    const top = comp([zeros('z', [1]), n('r', 'call', ['z'], { fn: 'f0' })], 'r');
    expect(() => model(fns, { maxVisits: 50 }).estimate(top)).toThrow(CostBudgetError);
    expect(model(fns, { maxVisits: 100_000 }).estimate(top).flops).toBeGreaterThan(0);
  });

  test('a top-level computation is costed with the type it is given where it declares unknowns', () => {
    const c = comp([n('y', 'mul', ['x', 'x'])], 'y', { name: 'x', type: f32(null, 4) });
    expect(model().estimate(c).flops).toBe(8 * 4); // unknown: the batch size
    expect(model().estimate(c, f32(1000, 4)).flops).toBe(4000);
  });

  test('only the batch-size assumption falls back to unknown dimensions; real shapes that fail throw', () => {
    const three = comp([n('t', 'reshape', ['x'], { shape: [3] }), n('y', 'neg', ['t'])], 'y', {
      name: 'x',
      type: f32(null),
    });
    // [8] cannot be reshaped to [3], but the batch size is an assumption: a batch of 3 runs
    expect(model().estimate(three).flops).toBe(1 + 3);
    // a caller's assumed batch dimension reaches a callee the same way
    const caller = comp([n('c', 'call', ['d'], { fn: 'three' })], 'c', { name: 'd', type: f32(null) });
    expect(model({ three }).estimate(caller).flops).toBe(1 + 3);
    // a real [4096] fails at run time: no cheaper estimate at the declared type
    expect(() => model().estimate(three, f32(4096))).toThrow(CostShapeError);
    const top = comp([zeros('z', [4096]), n('c', 'call', ['z'], { fn: 'three' })], 'c');
    let failure: unknown;
    try {
      model({ three }).estimate(top);
    } catch (e) {
      failure = e;
    }
    expect(failure).toBeInstanceOf(CostShapeError);
    expect(failure).toMatchObject({
      index: 1,
      node: 'c',
      op: 'call',
      reason: expect.stringMatching(/^function three: node "t" \(reshape\) given float32\[4096\]: /),
    });
  });

  test('every registry op has a cost entry', () => {
    expect(OP_NAMES.filter((name) => !Object.prototype.hasOwnProperty.call(OP_COSTS, name))).toEqual([]);
  });
});
