import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/compute/backend';
import type { ClientExamples } from '../src/data';
import { AppError } from '../src/errors';
import { LocalRunner, runLocal } from '../src/runner/local-runner';
import { PLAN_LIBRARY } from '../src/plans';
import sumPlan from './fixtures/sum-plan.json';

const values = (...xs: number[]): ClientExamples => ({ count: xs.length, leaves: [Float32Array.from(xs)] });

beforeAll(() => initBackend());

describe('LocalRunner on the hand-written sum plan', () => {
  // Three clients, so every round samples all of them; batch size 2 splits client a into [1,2],[3].
  const clients = new Map([
    ['a', values(1, 2, 3)],
    ['b', values(10)],
    ['c', values(0.5, 0.25)],
  ]);

  test('each round reports the sum over its clients and counts them', () => {
    const results = runLocal(sumPlan, clients, { seed: 7 });
    expect(results.map((r) => r.round)).toEqual([1, 2, 3]);
    for (const r of results) {
      expect(r.output).toEqual({ sum: 16.75, count: 3 });
      expect(r.participants).toBe(3);
      expect([...r.clients].sort()).toEqual(['a', 'b', 'c']);
    }
  });

  test('server state advances with update and the run leaves no tensors behind', () => {
    const before = tf.memory().numTensors;
    const runner = new LocalRunner(sumPlan, clients, { partials: 3 });
    for (const _ of runner.rounds()) void _;
    expect(
      tf.tidy(() =>
        (runner.state() as unknown as { fields: { value: tf.Tensor }[] }).fields[0]!.value.arraySync(),
      ),
    ).toBe(3);
    runner.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test('samples clientsPerRound clients and sums only theirs', () => {
    const [r] = runLocal({ ...sumPlan, schedule: { ...sumPlan.schedule, rounds: 1 } }, clients, {
      clientsPerRound: 2,
      seed: 3,
    });
    const expected = r!.clients
      .map((id) => [...clients.get(id)!.leaves[0]!].reduce((a, b) => a + b, 0))
      .reduce((a, b) => a + b);
    expect(r!.participants).toBe(2);
    expect(r!.output).toEqual({ sum: expected, count: 2 });
  });

  test('refuses to run rounds that could never reach min_reports', () => {
    expect(() => new LocalRunner(sumPlan, new Map([['a', values(1)]]))).toThrow(AppError);
  });
});

describe('LocalRunner memory', () => {
  test('100 rounds of FedAvg (fold, value_and_grad, Adam) leave the tensor count where it started', () => {
    const plan = PLAN_LIBRARY.fedavg!.build({
      layers: [4, 3, 2],
      rounds: 100,
      targetClients: 3,
      optimizer: 'adam',
      batchSize: 2,
      epochs: 2,
    });
    const client = (seed: number): ClientExamples => ({
      count: 5,
      leaves: [
        Float32Array.from({ length: 20 }, (_, i) => Math.sin(seed * 31 + i)),
        Int32Array.from({ length: 5 }, (_, i) => (seed + i) % 2),
      ],
    });
    const clients = new Map([1, 2, 3, 4].map((s) => [`c${s}`, client(s)]));
    const heldout = client(9);
    const before = tf.memory().numTensors;
    const runner = new LocalRunner(plan, clients, { evaluationData: heldout });
    const results = [...runner.rounds()];
    runner.dispose();
    expect(results).toHaveLength(100);
    expect(results[99]!.evaluation).toBeDefined();
    expect(tf.memory().numTensors).toBe(before);
  });
});
