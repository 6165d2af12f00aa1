import * as tf from '@tensorflow/tfjs';
import { Interpreter } from '../../compute/interpreter';
import { disposeValue, isStruct, structValue } from '../../compute/value';
import { valueToJson, type JsonValue } from '../../compute/value-json';
import { toBatches, type ClientExamples } from '../../data';
import {
  digitsClientExamples,
  loadDigits,
  partitionNonIid,
  subsetDigits,
  trainTestSplit,
} from '../../data/digits';
import { buildFedAvg } from '../../plans/fedavg';
import { LocalRunner } from '../../runner/local-runner';
import { clientProgramOf } from '../client-program';
import { runProgram } from '../reference';
import { buildTrainThenEvaluate } from './train-then-evaluate';

// A small digits split: 4 devices, each with its non-IID share of a fifth of the training examples and of
// the test examples.
const DEVICES = 4;
const { train, test } = trainTestSplit(loadDigits(), 0.2, 7);
const small = subsetDigits(
  train,
  Array.from({ length: Math.floor(train.n / 5) }, (_, i) => i * 5),
);
const trainParts = partitionNonIid(small.y, DEVICES, 2, 7).map((ix) => digitsClientExamples(small, ix));
const testParts = partitionNonIid(test.y, DEVICES, 2, 8).map((ix) => digitsClientExamples(test, ix));
const ids = trainParts.map((_, i) => `device-${i}`);

const OPTIONS = { layers: [64, 16, 10], clientLr: 0.3, epochs: 2, batchSize: 8, seed: 3 } as const;
const TEST_BATCH = 16;

/** Every number of a JSON value, depth first. */
function numbers(v: JsonValue): number[] {
  if (typeof v === 'number') return [v];
  if (typeof v === 'boolean') return [Number(v)];
  return (Array.isArray(v) ? v : Object.values(v)).flatMap(numbers);
}

function expectClose(actual: JsonValue, expected: JsonValue): void {
  const [a, e] = [numbers(actual), numbers(expected)];
  expect(a).toHaveLength(e.length);
  const worst = Math.max(...a.map((x, i) => Math.abs(x - e[i]!)));
  expect(worst).toBeLessThan(1e-5);
}

describe('train-then-evaluate', () => {
  it('trains as the FedAvg plan does in one round, then scores that model on the same devices', async () => {
    const program = buildTrainThenEvaluate({
      ...OPTIONS,
      rounds: 1,
      testBatchSize: TEST_BATCH,
      targetClients: DEVICES,
      minClients: DEVICES,
    });
    const devices = new Map<string, Record<string, ClientExamples>>(
      ids.map((id, i) => [id, { digits: trainParts[i]!, 'digits-test': testParts[i]! }]),
    );
    const before = tf.memory().numTensors;
    const result = await runProgram(program, devices, { serverValues: true });
    expect(result.failed).toBeUndefined();
    expect(tf.memory().numTensors).toBe(before);

    // The reference: the FedAvg plan (example-weighted, server SGD lr 1) run one round over the same devices.
    const plan = buildFedAvg({ ...OPTIONS, rounds: 1, targetClients: DEVICES });
    const runner = new LocalRunner(plan, new Map(ids.map((id, i) => [id, trainParts[i]!])), { rounds: 1 });
    try {
      const initial = valueToJson(runner.state()) as { model: JsonValue };
      const round = runner.runRound();
      expect(round.participants).toBe(DEVICES);
      const state = runner.state();
      if (!isStruct(state)) throw new Error('no state');
      const trained = valueToJson(state.fields[0]!.value);
      const out = result.outputs as {
        model: { model: JsonValue };
        metrics: Record<string, number>;
        train: Record<string, number>;
      };
      // Training moved the model, and moved it to where the plan did.
      expect(numbers(out.model.model)).not.toEqual(numbers(initial.model));
      expect((result.values!.model_0 as { model: JsonValue }).model).toEqual(initial.model);
      expectClose(out.model.model, trained);
      const planOutput = round.output as Record<string, number>;
      expect(out.train.examples).toBe(planOutput.examples);
      expect(out.train.clients).toBe(DEVICES);
      expect(out.train.loss).toBeCloseTo(planOutput.train_loss!, 5);

      // The metrics: the plan's evaluate on each device's test data, combined by example counts.
      const interpreter = new Interpreter(plan.functions ?? {});
      let [lossSum, correct, examples] = [0, 0, 0];
      for (const part of testParts) {
        const data = toBatches(part, plan.client_data.element, TEST_BATCH);
        const m = interpreter.run(
          plan.evaluate!,
          structValue([
            [undefined, state],
            [undefined, data],
          ]),
          {
            round: 1,
          },
        );
        const json = valueToJson(m) as { loss: number; accuracy: number; examples: number };
        disposeValue(m);
        disposeValue(data);
        lossSum += json.loss * json.examples;
        correct += Math.round(json.accuracy * json.examples);
        examples += json.examples;
      }
      expect(out.metrics.examples).toBe(examples);
      expect(out.metrics.clients).toBe(DEVICES);
      expect(out.metrics.accuracy).toBeCloseTo(correct / examples, 6);
      expect(out.metrics.loss).toBeCloseTo(lossSum / examples, 5);
      // One non-IID round on a fifth of the data already beats chance (0.1).
      expect(out.metrics.accuracy).toBeGreaterThan(0.2);
    } finally {
      runner.dispose();
    }
  }, 120_000);

  it('keeps training as the plan does over rounds, with the training data read once', async () => {
    const program = buildTrainThenEvaluate({ ...OPTIONS, rounds: 2, targetClients: DEVICES, minClients: 2 });
    const devices = new Map<string, Record<string, ClientExamples>>(
      ids.map((id, i) => [id, { digits: trainParts[i]!, 'digits-test': testParts[i]! }]),
    );
    const result = await runProgram(program, devices, { partials: 3 });
    const plan = buildFedAvg({ ...OPTIONS, rounds: 2, targetClients: DEVICES });
    const runner = new LocalRunner(plan, new Map(ids.map((id, i) => [id, trainParts[i]!])), { rounds: 2 });
    try {
      const rounds = [...runner.rounds()];
      expect(rounds.map((r) => r.participants)).toEqual([DEVICES, DEVICES]);
      const state = runner.state();
      if (!isStruct(state)) throw new Error('no state');
      expectClose((result.outputs.model as { model: JsonValue }).model, valueToJson(state.fields[0]!.value));
    } finally {
      runner.dispose();
    }
  }, 120_000);

  it('unrolls the rounds, reads the training data once and sends devices only what they run', () => {
    const program = buildTrainThenEvaluate({ ...OPTIONS, rounds: 3, targetClients: 4, minClients: 2 });
    const ops = program.steps.map((s) => s.op);
    expect(ops.filter((op) => op === 'client_data')).toHaveLength(2);
    expect(ops.filter((op) => op === 'aggregate')).toHaveLength(4);
    expect(program.steps.filter((s) => s.op === 'server_call' && s.fn === 'apply')).toHaveLength(3);
    expect(program.outputs).toEqual({ model: 'model_3', metrics: 'metrics', train: 'train_metrics' });
    const client = clientProgramOf(program);
    expect(Object.keys(client.computations).sort()).toEqual(['evaluate', 'local_train']);
    expect(Object.keys(client.functions ?? {}).sort()).toEqual(['eval_step', 'logits', 'loss', 'train_step']);
    expect(program.cohort).toMatchObject({ target_clients: 4, min_clients: 2 });
  });
});
