import * as tf from '@tensorflow/tfjs';
import { Interpreter } from '../compute/interpreter';
import { formatType, tensorLeaves } from '../compute/types';
import { disposeValue, isStruct, sequenceValue, structValue, type Value } from '../compute/value';
import { valueToJson, type JsonValue } from '../compute/value-json';
import { digitsClientExamples, loadDigits, partitionNonIid, trainTestSplit } from '../data/digits';
import type { Plan } from '../generated/plan';
import { checkPlan } from '../plan/validate';
import { allSecureParams } from '../rounds/form-steps';
import { LocalRunner } from '../runner/local-runner';
import { buildFedAvg } from './fedavg';
import { SECURE_LOSS_RANGE } from './fedavg-secure';

// A model with layers [2, 2] and one batch of three examples, so that every encoded number can be checked.
const startModel = (): Value =>
  structValue([
    [
      'w0',
      tf.tensor2d([
        [0.1, -0.1],
        [0.2, 0.3],
      ]),
    ],
    ['b0', tf.tensor1d([0, 0])],
  ]);
const batch = (x: number[][], y: number[]): Value =>
  structValue([
    ['x', tf.tensor2d(x)],
    ['y', tf.tensor1d(y, 'int32')],
  ]);
const BATCH_A = (): Value =>
  batch(
    [
      [1, 0],
      [0, 1],
      [1, 1],
    ],
    [0, 1, 0],
  );
const BATCH_B = (): Value =>
  batch(
    [
      [0, 2],
      [1, 0],
    ],
    [1, 1],
  );

/** `work` of a plan on one client batch from startModel: the work result as JSON (U, V1, V2, V3). */
function runWork(plan: Plan, data: () => Value): JsonValue[] {
  const interp = new Interpreter(plan.functions ?? {});
  const arg = structValue([
    [undefined, sequenceValue([data()])],
    [undefined, structValue([['model', startModel()]])],
  ]);
  const out = interp.run(plan.computations.work, arg, { round: 1 });
  try {
    return valueToJson(out) as JsonValue[];
  } finally {
    disposeValue(out);
    disposeValue(arg);
  }
}

const flat = (v: JsonValue): number[] => (Array.isArray(v) ? v.flatMap(flat) : [v as number]);
const leavesOf = (m: JsonValue): number[] => Object.values(m as Record<string, JsonValue>).flatMap(flat);

describe('fedavg --secure: the plan', () => {
  it('U, A and R are empty: every client-derived value travels in V1, through secure_sum_bitwidth', () => {
    const plan = buildFedAvg({ layers: [2, 2], secure: true });
    const { types } = checkPlan(plan);
    for (const t of [types.U, types.A, types.R]) {
      expect(formatType(t)).toBe('<>');
      expect(tensorLeaves(t)).toHaveLength(0);
    }
    expect(formatType(types.V[0])).toBe('<delta=<w0=int32[2,2],b0=int32[2]>,loss=int32,clients=int32>');
    expect(formatType(types.X)).toBe('<train_loss=float32,clients=int32>');
    expect(plan.update_bounds).toBeUndefined();
    // Two clients with different data upload the same (empty) U and different V1.
    const [a, b] = [runWork(plan, BATCH_A), runWork(plan, BATCH_B)];
    expect(a[0]).toEqual([]);
    expect(b[0]).toEqual([]);
    expect(a[1]).not.toEqual(b[1]);
    // Every model tensor and the loss take the bitwidth (16 by default); the count takes 1, so a client can
    // claim 0 or 1 and no more.
    const interp = new Interpreter(plan.functions ?? {});
    expect(allSecureParams(interp, checkPlan(plan), 1).bitwidth).toEqual([16, 16, 16, 1]);
  });

  it('work sends the clipped model change on the symmetric fixed-point grid, and the clipped loss', () => {
    // lr 5 moves some weights by more than c = 0.05, so the clip shows; 8 bits: h = 127, step c / 127.
    const [c, bits, h] = [0.05, 8, 127];
    const common = { layers: [2, 2], epochs: 2, clientLr: 5, clipRange: c, bitwidth: bits };
    const [plain] = runWork(buildFedAvg({ ...common, weighting: 'uniform' }), BATCH_A) as [
      { delta: JsonValue; loss_sum: number },
    ];
    const [, v1] = runWork(buildFedAvg({ ...common, secure: true }), BATCH_A) as [
      unknown,
      { delta: JsonValue; loss: number; clients: number },
    ];
    const change = leavesOf(plain.delta);
    const sent = leavesOf(v1.delta);
    expect(sent).toHaveLength(6);
    sent.forEach((q, i) => {
      const exact = (Math.min(c, Math.max(-c, change[i]!)) * h) / c + h;
      expect(Number.isInteger(q)).toBe(true);
      expect(Math.abs(q - exact)).toBeLessThanOrEqual(0.5 + 1e-4);
    });
    // Some coordinates were clipped to the ends of the grid, and none is past them.
    expect(change.some((d) => Math.abs(d) > c)).toBe(true);
    expect(sent.filter((q) => q === 0 || q === 2 * h).length).toBeGreaterThan(0);
    expect(Math.max(...sent)).toBeLessThanOrEqual(2 * h);
    expect(v1.clients).toBe(1);
    // Uniform weighting: plain loss_sum is the client's mean loss, which V1 carries on [0, 32] in 255 steps.
    const lossLevels = (plain.loss_sum * (2 ** bits - 1)) / SECURE_LOSS_RANGE;
    expect(Math.abs(v1.loss - lossLevels)).toBeLessThanOrEqual(0.5 + 1e-4);
  });

  it('an honest client scales its change down to --max-norm before it clips coordinates', () => {
    const common = { layers: [2, 2], epochs: 2, clientLr: 5, clipRange: 1, bitwidth: 20 };
    const [plain] = runWork(buildFedAvg({ ...common, weighting: 'uniform' }), BATCH_A) as [
      { delta: JsonValue },
    ];
    const [, v1] = runWork(buildFedAvg({ ...common, secure: true, maxNorm: 0.1 }), BATCH_A) as [
      unknown,
      { delta: JsonValue },
    ];
    const change = leavesOf(plain.delta);
    const norm = Math.hypot(...change);
    expect(norm).toBeGreaterThan(0.1);
    const h = 2 ** 19 - 1;
    const decoded = leavesOf(v1.delta).map((q) => (q - h) / h);
    decoded.forEach((d, i) => expect(d).toBeCloseTo((change[i]! * 0.1) / norm, 5));
  });

  it('update decodes the mean change as (sum - n h) c / h / n and applies the server optimizer', () => {
    // 4 bits: h = 7; c = 0.7, so one level is 0.1. Three clients' sums: w0 = [[24], [15]] and b0 = [21]
    // are 3, -6 and 0 levels from 3 h = 21: mean changes 0.1, -0.2, 0. Plain FedAvg: w = w - mean.
    const plan = buildFedAvg({ layers: [2, 1], secure: true, bitwidth: 4, clipRange: 0.7 });
    const interp = new Interpreter(plan.functions ?? {});
    const state = structValue([
      [
        'model',
        structValue([
          ['w0', tf.tensor2d([[1], [2]])],
          ['b0', tf.tensor1d([0.5])],
        ]),
      ],
      ['optimizer', structValue([])],
      ['round', tf.scalar(4, 'int32')],
    ]);
    const sums = structValue([
      [
        'delta',
        structValue([
          ['w0', tf.tensor2d([[24], [15]], undefined, 'int32')],
          ['b0', tf.tensor1d([21], 'int32')],
        ]),
      ],
      ['loss', tf.scalar(30, 'int32')],
      ['clients', tf.scalar(3, 'int32')],
    ]);
    const arg = structValue([
      [undefined, state],
      [
        undefined,
        structValue([
          [undefined, structValue([])],
          [undefined, sums],
          [undefined, structValue([])],
          [undefined, structValue([])],
        ]),
      ],
    ]);
    const out = interp.run(plan.computations.update, arg, { round: 5 });
    if (!isStruct(out)) throw new Error('update returned no struct');
    const [next, output] = out.fields.map((f) => valueToJson(f.value)) as [
      { model: { w0: number[][]; b0: number[] }; round: number },
      { train_loss: number; clients: number },
    ];
    expect(next.model.w0[0]![0]).toBeCloseTo(0.9, 6);
    expect(next.model.w0[1]![0]).toBeCloseTo(2.2, 6);
    expect(next.model.b0[0]).toBeCloseTo(0.5, 6);
    expect(next.round).toBe(5);
    // Loss levels: 30 in all, each worth 32 / 15; over 3 clients that is a mean loss of 64 / 3.
    expect(output.train_loss).toBeCloseTo(64 / 3, 4);
    expect(output.clients).toBe(3);
    disposeValue(out);
    disposeValue(arg);
  });

  it('refuses example weighting, and a bitwidth whose round sum could pass int32', () => {
    expect(() => buildFedAvg({ secure: true, weighting: 'examples' })).toThrow(
      /option --weighting: examples does not work with --secure/,
    );
    // 16 bits: 32768 x (2^16 - 1) = 2147450880 fits int32; one client more does not.
    expect(() => buildFedAvg({ secure: true, targetClients: 32768, overSelection: 1 })).not.toThrow();
    expect(() => buildFedAvg({ secure: true, targetClients: 32769, overSelection: 1 })).toThrow(
      /option --bitwidth: 32769 clients a round .* can sum to 2147516415, beyond int32 \(2\^31-1\); use --bitwidth 15 or less/,
    );
    // Over-selection counts: 26000 x 1.3 = 33800 clients can report.
    expect(() => buildFedAvg({ secure: true, targetClients: 26000 })).toThrow(/33800 clients a round/);
    // The plain variant has no secure sum to overflow.
    expect(() => buildFedAvg({ targetClients: 32769, overSelection: 1 })).not.toThrow();
  });
});

describe('fedavg --secure on the digits data', () => {
  // The split, schedule and settings of test/fedavg-digits.test.ts: the CLI's `data digits --clients 100
  // --shards-per-client 2 --test-fraction 0.2` (with its default seed, 1), `run-local`'s sampling seed 0, and
  // the plan's defaults (50 rounds, 20 clients a round), with the model change in 16-bit fixed point.
  it('reaches at least 0.90 held-out accuracy within 50 rounds', () => {
    const { train, test } = trainTestSplit(loadDigits(), 0.2, 1);
    const parts = partitionNonIid(train.y, 100, 2, 1);
    const clients = new Map(
      parts.map((idx, i) => [`client-${String(i).padStart(3, '0')}`, digitsClientExamples(train, idx)]),
    );
    const heldOut = digitsClientExamples(
      test,
      Array.from({ length: test.n }, (_, i) => i),
    );
    const plan = buildFedAvg({ secure: true, rounds: 50, targetClients: 20 });
    const runner = new LocalRunner(plan, clients, { evaluationData: heldOut });
    const rounds = (() => {
      try {
        return [...runner.rounds()];
      } finally {
        runner.dispose();
      }
    })();
    const accuracy = rounds.map((r) => (r.evaluation as { accuracy: number; examples: number }).accuracy);
    expect(rounds).toHaveLength(50);
    expect(rounds.every((r) => r.participants === 20 && r.rejected.length === 0)).toBe(true);
    expect((rounds[0]!.evaluation as { examples: number }).examples).toBe(359);
    expect(Math.max(...accuracy)).toBeGreaterThanOrEqual(0.9);
    expect(accuracy[49]).toBeGreaterThanOrEqual(0.9);
    // Before training the model is near chance, so the figure is earned by the rounds.
    expect(accuracy[0]).toBeLessThan(0.9);
    // The released loss is the decoded mean of the clients' losses: finite and falling.
    const loss = rounds.map((r) => (r.output as { train_loss: number }).train_loss);
    expect(loss.every(Number.isFinite)).toBe(true);
    expect(loss[49]).toBeLessThan(loss[0]!);
  });
});
