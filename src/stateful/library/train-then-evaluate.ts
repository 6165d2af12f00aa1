/**
 * Train, then evaluate the trained model on the same devices (docs/stateful.md): what a plan cannot do, since
 * a plan's device keeps nothing between rounds and evaluates only on the server's held-out data.
 */
import { sequenceType } from '../../compute/types';
import { named } from '../../plans/common';
import { plainUpdate } from '../../plans/fedavg-plain';
import { resolveOptions, type OptionSpecs } from '../../plans/options';
import { ProgramBuilder } from '../builder';
import type { Program } from '../program';
import {
  aggregateMetrics,
  aggregateUpdates,
  defineFedAvgProgram,
  FEDAVG_PROGRAM_OPTIONS,
  fedAvgProgramMeta,
  type FedAvgProgramOptions,
} from './fedavg-program';

/** Options of the train-then-evaluate program. */
export type TrainThenEvaluateOptions = FedAvgProgramOptions;

/** The program's options: the model and training ones are the FedAvg plan's, with its defaults. */
export const TRAIN_THEN_EVALUATE_OPTIONS: OptionSpecs<TrainThenEvaluateOptions> = FEDAVG_PROGRAM_OPTIONS;

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
  const pb = new ProgramBuilder();
  const parts = defineFedAvgProgram(pb, o);
  pb.computation('local_train', named({ data: sequenceType(parts.batch), broadcast: parts.C }), (b, p) =>
    plainUpdate(b, parts.train(b, p), { uniform: false, epochs: o.epochs, maxExamples: o.maxExamples }),
  );

  // Step 0, whose index seeds random ops as round 0 seeds the plan's initialize: the same initial model.
  let model = pb.serverCall('initialize', [], { result: 'model_0' });
  const trainData = pb.clientData('train');
  let report = '';
  for (let r = 1; r <= o.rounds; r++) {
    const modelC = pb.broadcast(model);
    const update = pb.clientCall('local_train', [trainData, modelC], { result: `update_${r}` });
    report = aggregateUpdates(pb, update, o.minClients, `report_${r}`);
    pb.dispose([modelC, update]);
    model = pb.serverCall('apply', [model, report], { result: `model_${r}` });
  }
  pb.dispose([trainData]);
  const trainMetrics = pb.serverCall('train_metrics', [report]);
  const finalC = pb.broadcast(model);
  const testData = pb.clientData('test');
  const { metrics, scored } = aggregateMetrics(pb, testData, finalC, o.minClients, 'metrics');
  pb.dispose([finalC, testData, scored]);
  pb.output('model', model);
  pb.output('metrics', metrics);
  pb.output('train', trainMetrics);

  return pb.build(
    fedAvgProgramMeta(
      o,
      parts,
      'train-then-evaluate',
      `FedAvg of a ${o.layers.join('-')} MLP for ${o.rounds} rounds (${o.epochs} local epochs of SGD, lr ` +
        `${o.clientLr}, batch ${o.batchSize}; example-weighted averaging), then the trained model evaluated ` +
        `on the same devices' ${o.testCollection} data.`,
    ),
  );
}
