/**
 * Train, then evaluate the trained model on the same devices (docs/stateful.md): what a plan cannot do, since
 * a plan's device keeps nothing between rounds and evaluates only on the server's held-out data.
 */
import type { ComputationBuilder, Handle } from '../../compute/builder';
import { sequenceType, tensorType } from '../../compute/types';
import { f32, i32, named } from '../../plans/common';
import { FEDAVG_OPTIONS } from '../../plans/fedavg';
import {
  batchType,
  defineEvalStep,
  defineLocalTraining,
  defineModelFns,
  initialModel,
  modelType,
} from '../../plans/fedavg-model';
import { plainAggregation, plainUpdate } from '../../plans/fedavg-plain';
import { intOption, nameOption, resolveOptions, type OptionSpecs } from '../../plans/options';
import { applyOptimizer } from '../../plans/server-optimizers';
import { ProgramBuilder } from '../builder';
import type { Program } from '../program';

/** Options of the train-then-evaluate program. */
export interface TrainThenEvaluateOptions {
  /** Training rounds, unrolled into the program's steps; one evaluation follows the last. */
  rounds: number;
  /** The training collection (the device's examples store name). */
  collection: string;
  /** The evaluation collection. */
  testCollection: string;
  batchSize: number;
  testBatchSize: number;
  layers: readonly number[];
  clientLr: number;
  epochs: number;
  maxExamples: number;
  /** Seeds the initial weights and the local epochs' reshuffling. */
  seed: number;
  targetClients: number;
  /** The cohort's minimum, and every aggregation's. */
  minClients: number;
  joinTimeoutS: number;
  stepTimeoutS: number;
}

/** The program's options: the model and training ones are the FedAvg plan's, with its defaults. */
export const TRAIN_THEN_EVALUATE_OPTIONS: OptionSpecs<TrainThenEvaluateOptions> = {
  rounds: intOption('training rounds before the evaluation', 5, { min: 1, max: 1000 }),
  collection: FEDAVG_OPTIONS.collection,
  testCollection: nameOption('the evaluation collection of each device', 'digits-test'),
  batchSize: FEDAVG_OPTIONS.batchSize,
  testBatchSize: intOption('examples per evaluation batch', 64, { min: 1, max: 65536 }),
  layers: FEDAVG_OPTIONS.layers,
  clientLr: FEDAVG_OPTIONS.clientLr,
  epochs: FEDAVG_OPTIONS.epochs,
  maxExamples: FEDAVG_OPTIONS.maxExamples,
  seed: FEDAVG_OPTIONS.seed,
  targetClients: intOption('devices recruited into the cohort', 20, { min: 2, max: 1_000_000 }),
  minClients: intOption("fewest devices in the cohort and in every aggregation's result", 10, {
    min: 2,
    max: 1_000_000,
  }),
  joinTimeoutS: intOption('seconds the server recruits the cohort', 120, { min: 1, max: 86_400 }),
  stepTimeoutS: intOption('seconds a device may take to answer a batch of requests', 120, {
    min: 1,
    max: 86_400,
  }),
};

/**
 * FedAvg on the devices' `train` collection for `rounds` rounds, exactly the FedAvg plan's plain round with
 * example weighting and server SGD at learning rate 1 (the new model is the weighted average): the model is
 * broadcast, each device trains it (the plan's `work` update), the updates are aggregated by the plan's
 * zero/accumulate/merge/report and the server applies the mean change. The final model is then broadcast
 * and each device of the same cohort scores it on its `test` collection with the plan's `eval_step`; the
 * loss and correct-prediction sums are aggregated. The training data is read once and kept on the device
 * for every round. Outputs: `model` (`<model=M>`), `metrics` `<loss, accuracy, examples, clients>`
 * (accuracy = correct / examples over every device's test examples) and `train` (the last round's
 * `<delta, examples, loss, clients>` report's loss, examples and clients).
 *
 * Unlike the plan, no update bounds apply: a program has none yet (the plan's are not reached by honest
 * devices at its defaults, so the two agree).
 */
export function buildTrainThenEvaluate(options: Partial<TrainThenEvaluateOptions> = {}): Program {
  const o = resolveOptions(TRAIN_THEN_EVALUATE_OPTIONS, options);
  const shape = { layers: o.layers };
  const M = modelType(shape);
  const batch = batchType(shape);
  // The broadcast is `<model=M>`, as the plan's C, so that local training is the plan's.
  const C = named({ model: M });
  const pb = new ProgramBuilder();
  const { logits, loss } = defineModelFns(pb, shape);
  const train = defineLocalTraining(pb, shape, o, loss);
  const evalStep = defineEvalStep(pb, M, batch, logits, loss);
  const fold = plainAggregation(M, false);
  const sgd = { kind: 'sgd', lr: 1, momentum: 0 } as const;

  // Named `initialize` as the plan's: a random op's draw is seeded by the computation's name and node.
  pb.computation('initialize', undefined, (b) => b.struct({ model: initialModel(b, shape, o.seed) }));
  pb.computation('local_train', named({ data: sequenceType(batch), broadcast: C }), (b, p) =>
    plainUpdate(b, train(b, p), { uniform: false, epochs: o.epochs, maxExamples: o.maxExamples }),
  );
  pb.computation('zero', undefined, fold.zero);
  pb.computation('accumulate', fold.accumulate.parameter, fold.accumulate.body);
  pb.computation('merge', fold.merge.parameter, fold.merge.body);
  pb.computation('report', fold.report.parameter, fold.report.body);
  pb.computation('apply', named({ state: C, report: fold.R }), (b, p) => {
    const model = b.get(p, 'state.model');
    const next = applyOptimizer(b, sgd, model, b.get(p, 'report.delta'), b.struct([]), b.scalar(1, 'int32'));
    return b.struct({ model: next.weights });
  });
  pb.computation('train_metrics', fold.R, (b, r) =>
    b.struct({ loss: b.field(r, 'loss'), examples: b.field(r, 'examples'), clients: b.field(r, 'clients') }),
  );
  defineEvaluation(pb, C, batch, evalStep);

  const aggregation = { minClients: o.minClients };
  // Step 0, whose index seeds random ops as round 0 seeds the plan's initialize: the same initial model.
  let model = pb.serverCall('initialize', [], { result: 'model_0' });
  const trainData = pb.clientData('train');
  let report = '';
  for (let r = 1; r <= o.rounds; r++) {
    const modelC = pb.broadcast(model);
    const update = pb.clientCall('local_train', [trainData, modelC], { result: `update_${r}` });
    report = pb.aggregate(update, {
      zero: 'zero',
      accumulate: 'accumulate',
      merge: 'merge',
      report: 'report',
      ...aggregation,
      result: `report_${r}`,
    });
    pb.dispose([modelC, update]);
    model = pb.serverCall('apply', [model, report], { result: `model_${r}` });
  }
  pb.dispose([trainData]);
  const trainMetrics = pb.serverCall('train_metrics', [report]);
  const finalC = pb.broadcast(model);
  const testData = pb.clientData('test');
  const scored = pb.clientCall('evaluate', [testData, finalC]);
  const metrics = pb.aggregate(scored, {
    zero: 'eval_zero',
    accumulate: 'eval_accumulate',
    merge: 'eval_merge',
    report: 'eval_report',
    ...aggregation,
    result: 'metrics',
  });
  pb.dispose([finalC, testData, scored]);
  pb.output('model', model);
  pb.output('metrics', metrics);
  pb.output('train', trainMetrics);

  // As the plan's: labels declare their range, so every loader of client data refuses one outside it.
  const element = named({
    x: batch.fields[0]!.type,
    y: { ...tensorType('int32', [null]), range: [0, o.layers.at(-1)! - 1] },
  });
  return pb.build({
    name: 'train-then-evaluate',
    description:
      `FedAvg of a ${o.layers.join('-')} MLP for ${o.rounds} rounds (${o.epochs} local epochs of SGD, lr ` +
      `${o.clientLr}, batch ${o.batchSize}; example-weighted averaging), then the trained model evaluated ` +
      `on the same devices' ${o.testCollection} data.`,
    population: o.collection,
    client_data: {
      train: { collection: o.collection, element, batch_size: o.batchSize },
      test: { collection: o.testCollection, element, batch_size: o.testBatchSize },
    },
    cohort: {
      target_clients: o.targetClients,
      min_clients: o.minClients,
      join_timeout_s: o.joinTimeoutS,
      step_timeout_s: o.stepTimeoutS,
    },
  });
}

/**
 * The evaluation: `evaluate` (`<data, broadcast=<model=M>> -> <loss_sum, correct, examples>`, a fold of the
 * plan's eval_step) on each device, summed by `eval_*` into `<loss, accuracy, examples, clients>`.
 */
function defineEvaluation(
  pb: ProgramBuilder,
  C: ReturnType<typeof named>,
  batch: ReturnType<typeof batchType>,
  evalStep: ReturnType<typeof defineEvalStep>,
): void {
  const Sums = named({ loss_sum: f32(), correct: i32(), examples: i32() });
  const A = named({ loss_sum: f32(), correct: i32(), examples: i32(), clients: i32() });
  pb.computation('evaluate', named({ data: sequenceType(batch), broadcast: C }), (b, p) => {
    const init = b.struct(
      {
        params: b.get(p, 'broadcast.model'),
        loss_sum: b.scalar(0),
        correct: b.scalar(0, 'int32'),
        seen: b.scalar(0, 'int32'),
      },
      'eval_init',
    );
    const out = b.fold(b.field(p, 'data'), init, evalStep, {}, 'evaluated');
    return b.struct({
      loss_sum: b.field(out, 'loss_sum'),
      correct: b.field(out, 'correct'),
      examples: b.field(out, 'seen'),
    });
  });
  const sum = (b: ComputationBuilder, x: Handle, y: Handle, clients: Handle): Handle =>
    b.struct({
      loss_sum: b.add(b.field(x, 'loss_sum'), b.field(y, 'loss_sum')),
      correct: b.add(b.field(x, 'correct'), b.field(y, 'correct')),
      examples: b.add(b.field(x, 'examples'), b.field(y, 'examples')),
      clients,
    });
  pb.computation('eval_zero', undefined, (b) => b.tree.zeros(A));
  pb.computation('eval_accumulate', named({ accumulator: A, update: Sums }), (b, p) => {
    const acc = b.field(p, 'accumulator');
    return sum(b, acc, b.field(p, 'update'), b.add(b.field(acc, 'clients'), 1));
  });
  pb.computation('eval_merge', named({ a: A, b: A }), (b, p) => b.tree.add(b.field(p, 'a'), b.field(p, 'b')));
  pb.computation('eval_report', A, (b, a) => {
    const n = b.maximum(b.cast(b.field(a, 'examples'), 'float32'), 1, 'examples_f');
    return b.struct({
      loss: b.div(b.field(a, 'loss_sum'), n, 'loss'),
      accuracy: b.div(b.cast(b.field(a, 'correct'), 'float32'), n, 'accuracy'),
      examples: b.field(a, 'examples'),
      clients: b.field(a, 'clients'),
    });
  });
}
