import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/compute/backend';
import type { ClientExamples } from '../src/data';
import { AppError } from '../src/errors';
import { LocalRunner, runLocal } from '../src/runner/local-runner';
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
