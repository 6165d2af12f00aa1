import * as tf from '@tensorflow/tfjs';
import { Interpreter } from '../compute/interpreter';
import { disposeValue, isStruct, sequenceValue, structValue, type Value } from '../compute/value';
import { valueToJson, type JsonValue } from '../compute/value-json';
import type { Plan } from '../generated/plan';
import { buildFedAvg } from './fedavg';

// A model with layers [2, 1]: w0 is 2x1, b0 has 1 element, so every number below can be checked by hand.
const model = (w: [number, number], b: number): Value =>
  structValue([
    ['w0', tf.tensor2d([[w[0]], [w[1]]])],
    ['b0', tf.tensor1d([b])],
  ]);
const report = (g: [number, number], gb: number): Value =>
  structValue([
    ['delta', model(g, gb)],
    ['examples', tf.scalar(10, 'int32')],
    ['loss', tf.scalar(0.7)],
    ['clients', tf.scalar(2, 'int32')],
  ]);
const empty = () => structValue([]);

function runUpdate(
  plan: Plan,
  state: Value,
  r: Value,
): { state: Value; json: { state: JsonValue; output: JsonValue } } {
  const interp = new Interpreter(plan.functions ?? {});
  const arg = structValue([
    [undefined, state],
    [
      undefined,
      structValue([
        [undefined, r],
        [undefined, empty()],
        [undefined, empty()],
        [undefined, empty()],
      ]),
    ],
  ]);
  const out = interp.run(plan.computations.update, arg, { round: 1 });
  if (!isStruct(out)) throw new Error('update returned no struct');
  return {
    state: out.fields[0]!.value,
    json: { state: valueToJson(out.fields[0]!.value), output: valueToJson(out.fields[1]!.value) },
  };
}

function expectClose(actual: JsonValue, expected: JsonValue, digits = 5): void {
  if (typeof expected === 'number') return void expect(actual).toBeCloseTo(expected, digits);
  if (Array.isArray(expected)) {
    expect(Array.isArray(actual) && actual.length).toBe(expected.length);
    return expected.forEach((e, i) => expectClose((actual as JsonValue[])[i]!, e, digits));
  }
  if (typeof expected === 'object') {
    expect(Object.keys(actual as object)).toEqual(Object.keys(expected));
    for (const [k, e] of Object.entries(expected))
      expectClose((actual as Record<string, JsonValue>)[k]!, e, digits);
    return;
  }
  expect(actual).toEqual(expected);
}

describe('fedavg server optimizers', () => {
  it('SGD with momentum: v = 0.9 v + g, w = w - 0.5 v', () => {
    const plan = buildFedAvg({ layers: [2, 1], optimizer: 'sgd', serverLr: 0.5, momentum: 0.9 });
    const state = structValue([
      ['model', model([1, 2], 0.5)],
      ['optimizer', structValue([['velocity', model([0.1, -0.2], 0)]])],
      ['round', tf.scalar(3, 'int32')],
    ]);
    const { json } = runUpdate(plan, state, report([0.2, 0.4], -1));
    // v: [0.09 + 0.2, -0.18 + 0.4] = [0.29, 0.22], b: 0 - 1 = -1.
    // w: [1 - 0.145, 2 - 0.11] = [0.855, 1.89], b: 0.5 + 0.5 = 1.
    expectClose(json.state, {
      model: { w0: [[0.855], [1.89]], b0: [1] },
      optimizer: { velocity: { w0: [[0.29], [0.22]], b0: [-1] } },
      round: 4,
    });
    expect(json.output).toEqual({ train_loss: expect.closeTo(0.7, 6), examples: 10, clients: 2 });
    disposeValue(state);
  });

  it('plain FedAvg (lr 1, momentum 0) subtracts the averaged delta and keeps no optimizer state', () => {
    const plan = buildFedAvg({ layers: [2, 1] });
    const state = structValue([
      ['model', model([1, 2], 0.5)],
      ['optimizer', empty()],
      ['round', tf.scalar(0, 'int32')],
    ]);
    const { json } = runUpdate(plan, state, report([0.25, -0.5], 1));
    expectClose(json.state, { model: { w0: [[0.75], [2.5]], b0: [-0.5] }, optimizer: [], round: 1 });
  });

  it('Adam with bias correction over two steps matches the formulas by hand', () => {
    const [lr, b1, b2, eps] = [0.1, 0.9, 0.999, 1e-7];
    const plan = buildFedAvg({
      layers: [2, 1],
      optimizer: 'adam',
      serverLr: lr,
      beta1: b1,
      beta2: b2,
      epsilon: eps,
    });
    const zeros = () => model([0, 0], 0);
    const state0 = structValue([
      ['model', model([1, 2], 0.5)],
      [
        'optimizer',
        structValue([
          ['m', zeros()],
          ['v', zeros()],
        ]),
      ],
      ['round', tf.scalar(0, 'int32')],
    ]);
    // Step 1 by hand: m = 0.1 g, v = 0.001 g^2, lr_t = 0.1 sqrt(0.001) / 0.1, so each weight moves by
    // lr_t * 0.1 g / (sqrt(0.001) |g| + eps) = 0.1 * sign(g) up to epsilon: the first Adam step is lr * sign(g).
    const step1 = runUpdate(plan, state0, report([0.2, 0.4], -1));
    expectClose(step1.json.state, {
      model: { w0: [[0.9], [1.9]], b0: [0.6] },
      optimizer: { m: { w0: [[0.02], [0.04]], b0: [-0.1] }, v: { w0: [[0.00004], [0.00016]], b0: [0.001] } },
      round: 1,
    });

    // Step 2, the same formulas written out per weight.
    const g2: [number, number, number] = [0.2, -0.4, 0.5];
    const m1 = [0.02, 0.04, -0.1];
    const v1 = [0.00004, 0.00016, 0.001];
    const w1 = [0.9, 1.9, 0.6];
    const lrT = (lr * Math.sqrt(1 - b2 ** 2)) / (1 - b1 ** 2);
    const m2 = m1.map((m, i) => b1 * m + (1 - b1) * g2[i]!);
    const v2 = v1.map((v, i) => b2 * v + (1 - b2) * g2[i]! ** 2);
    const w2 = w1.map((w, i) => w - (lrT * m2[i]!) / (Math.sqrt(v2[i]!) + eps));
    const step2 = runUpdate(plan, step1.state, report([g2[0], g2[1]], g2[2]));
    expectClose(step2.json.state, {
      model: { w0: [[w2[0]!], [w2[1]!]], b0: [w2[2]!] },
      optimizer: {
        m: { w0: [[m2[0]!], [m2[1]!]], b0: [m2[2]!] },
        v: { w0: [[v2[0]!], [v2[1]!]], b0: [v2[2]!] },
      },
      round: 2,
    });
    disposeValue(state0);
  });
});

describe('fedavg work', () => {
  it('local SGD lowers the loss on the client batch and weights the delta by the example count', () => {
    const plan = buildFedAvg({ layers: [2, 2], epochs: 4, clientLr: 0.5 });
    const interp = new Interpreter(plan.functions ?? {});
    const w = structValue([
      [
        'w0',
        tf.tensor2d([
          [0.1, -0.1],
          [0.2, 0.3],
        ]),
      ],
      ['b0', tf.tensor1d([0, 0])],
    ]);
    const batch = structValue([
      [
        'x',
        tf.tensor2d([
          [1, 0],
          [0, 1],
          [1, 1],
        ]),
      ],
      ['y', tf.tensor1d([0, 1, 0], 'int32')],
    ]);
    const data = sequenceValue([batch]);
    const U = interp.run(
      plan.computations.work,
      structValue([
        [undefined, data],
        [undefined, structValue([['model', w]])],
      ]),
      { round: 1 },
    );
    const u = valueToJson(U) as [
      { delta: { w0: number[][]; b0: number[] }; examples: number; loss_sum: number },
      ...unknown[],
    ];
    expect(u[0].examples).toBe(3);
    // The trained weights are start - delta / examples; their loss on the batch must be lower.
    const loss = (params: Value) => {
      const v = interp.run(
        plan.functions!.loss!,
        structValue([
          [undefined, params],
          [undefined, batch],
        ]),
        { round: 1 },
      );
      const n = (v as tf.Tensor).dataSync()[0]!;
      disposeValue(v);
      return n;
    };
    const [w0, b0] = w.fields.map((f) => f.value as tf.Tensor) as [tf.Tensor, tf.Tensor];
    const trained = structValue([
      ['w0', w0.sub(tf.tensor2d(u[0].delta.w0).div(3))],
      ['b0', b0.sub(tf.tensor1d(u[0].delta.b0).div(3))],
    ]);
    const before = loss(w);
    const after = loss(trained);
    expect(after).toBeLessThan(before);
    // loss_sum is the client's mean training loss times its examples: positive and finite.
    expect(u[0].loss_sum).toBeGreaterThan(0);
    expect(u[0].loss_sum / 3).toBeLessThan(before + 1e-6);
    for (const v of [U, w, data, trained]) disposeValue(v);
  });
});
