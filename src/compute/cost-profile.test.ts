import * as tf from '@tensorflow/tfjs';
import type { Computation, Node } from '../generated/computation';
import { buildFedAvg } from '../plans';
import { CostModel } from './cost';
import { Interpreter } from './interpreter';
import { sequenceType, structType, tensorType, type TffType } from './types';
import { disposeValue, sequenceValue, type Value } from './value';

// The cost model claims to follow the interpreter; here the interpreter's real peak memory, as tfjs counts it
// (tf.profile's peakBytes, deterministic for a backend), is compared with the estimate. Exact where the
// model is exact (scopes, calls, loops), within a margin where kernels and the gradient tape are modelled.

const f32 = (...shape: (number | null)[]) => tensorType('float32', shape);
const n = (name: string, op: string, args: string[] = [], attrs?: Record<string, unknown>): Node => ({
  name,
  op,
  args,
  ...(attrs ? { attrs } : {}),
});
const ones = (name: string, shape: number[]) => n(name, 'const', [], { dtype: 'float32', shape, value: 1 });
const fn = (parameter: TffType, nodes: Node[], result: string): Computation => ({
  parameter: { name: 'p', type: parameter },
  nodes,
  result,
});

const functions: Record<string, Computation> = {
  twice: fn(f32(null), [n('a', 'add', ['p', 'p']), n('b', 'mul', ['a', 'a'])], 'b'),
  step: fn(f32(null), [n('a', 'mul', ['p', 'p']), n('b', 'add', ['a', 'p'])], 'b'),
  loss: fn(
    structType([
      ['w', f32(1000)],
      ['x', f32(1000)],
    ]),
    [
      n('w', 'field', ['p'], { index: 0 }),
      n('x', 'field', ['p'], { index: 1 }),
      n('m', 'mul', ['w', 'x']),
      n('t', 'tanh', ['m']),
      n('l', 'reduce_sum', ['t']),
    ],
    'l',
  ),
  fold_step: fn(
    structType([
      ['acc', f32(100)],
      ['x', f32(null, 100)],
    ]),
    [
      n('acc', 'field', ['p'], { index: 0 }),
      n('x', 'field', ['p'], { index: 1 }),
      n('s', 'reduce_sum', ['x'], { axes: [0] }),
      n('next', 'add', ['acc', 's']),
    ],
    'next',
  ),
};

/** The interpreter's peak bytes above what was allocated before it ran. */
async function measuredPeak(
  interpreter: Interpreter,
  comp: Computation,
  arg: Value | undefined,
): Promise<number> {
  const before = tf.memory().numBytes;
  let out: Value | undefined;
  const profile = await tf.profile(() => {
    out = interpreter.run(comp, arg, { round: 1 });
    return [];
  });
  disposeValue(out!);
  return profile.peakBytes - before;
}

const model = (fns: Record<string, Computation>, batchSize = 8, sequenceLength = 10) =>
  new CostModel({ functions: fns, batchSize, sequenceLength, maxTensorElements: 1 << 24, maxVisits: 1e6 });

describe('the cost model against the interpreter’s measured peak memory', () => {
  const interpreter = new Interpreter(functions);
  const cases: [string, Computation, number, number][] = [
    [
      'a chain of adds',
      {
        nodes: [
          ones('c', [100_000]),
          ...Array.from({ length: 10 }, (_, i) => n(`a${i}`, 'add', [i ? `a${i - 1}` : 'c', 'c'])),
        ],
        result: 'a9',
      },
      1,
      1,
    ],
    [
      'calls',
      {
        nodes: [
          ones('c', [100_000]),
          n('r', 'call', ['c'], { fn: 'twice' }),
          n('s', 'call', ['r'], { fn: 'twice' }),
        ],
        result: 's',
      },
      1,
      1,
    ],
    [
      'a repeat',
      { nodes: [ones('c', [100_000]), n('r', 'repeat', ['c'], { fn: 'step', count: 20 })], result: 'r' },
      1,
      1,
    ],
    [
      'a gradient',
      {
        nodes: [ones('w', [1000]), ones('x', [1000]), n('g', 'value_and_grad', ['w', 'x'], { fn: 'loss' })],
        result: 'g',
      },
      0.9,
      1.3,
    ],
    [
      'norm and softmax on the first axis',
      {
        nodes: [ones('c', [1000, 100]), n('nrm', 'norm', ['c']), n('h', 'softmax', ['c'], { axis: 0 })],
        result: 'nrm',
      },
      0.9,
      1.3,
    ],
  ];

  test.each(cases)('%s', async (_name, comp, low, high) => {
    const estimate = model(functions).estimate(comp).peakBytes;
    const actual = await measuredPeak(interpreter, comp, undefined);
    expect(estimate).toBeGreaterThanOrEqual(low * actual);
    expect(estimate).toBeLessThanOrEqual(high * actual);
  });

  test('a fold over a sequence of batches', async () => {
    const work: Computation = {
      parameter: { name: 'd', type: sequenceType(f32(null, 100)) },
      nodes: [
        n('z', 'const', [], { dtype: 'float32', shape: [100], value: 0 }),
        n('f', 'fold', ['d', 'z'], { fn: 'fold_step', epochs: 3 }),
      ],
      result: 'f',
    };
    const data = sequenceValue(Array.from({ length: 10 }, () => tf.ones([8, 100])));
    const actual = await measuredPeak(interpreter, work, data);
    disposeValue(data);
    expect(model(functions).estimate(work).peakBytes).toBe(actual);
  });

  test("FedAvg's work: local training by fold and value_and_grad", async () => {
    const plan = buildFedAvg({ layers: [64, 32, 10] });
    const fns = plan.functions!;
    const fedavg = new Interpreter(fns);
    const state = fedavg.run(plan.initialize!, undefined, { round: 0 });
    const broadcast = fedavg.run(plan.computations.prepare, state, { round: 1 });
    const B = plan.client_data.batch_size;
    const batch = (): Value => ({
      kind: 'struct',
      fields: [
        { name: 'x', value: tf.randomUniform([B, 64]) },
        { name: 'y', value: tf.zeros([B], 'int32') },
      ],
    });
    const data = sequenceValue(Array.from({ length: 10 }, batch));
    const arg: Value = { kind: 'struct', fields: [{ value: data }, { value: broadcast }] };
    const actual = await measuredPeak(fedavg, plan.computations.work, arg);
    for (const v of [data, broadcast, state]) disposeValue(v);
    const estimate = model(fns, B, 10).estimate(plan.computations.work).peakBytes;
    expect(estimate).toBeGreaterThanOrEqual(0.9 * actual);
    expect(estimate).toBeLessThanOrEqual(1.3 * actual);
  });
});
