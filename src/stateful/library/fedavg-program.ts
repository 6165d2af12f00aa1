/**
 * What the library's FedAvg programs (train-then-evaluate, personalised) share: the FedAvg plan's model,
 * local training, plain aggregation and server step as program computations, the evaluation on the devices,
 * and the program's data and cohort. Each program adds its own `local_train` and writes its steps.
 */
import type { ComputationBuilder, Handle } from '../../compute/builder';
import { sequenceType, tensorType, type StructType } from '../../compute/types';
import { f32, i32, named } from '../../plans/common';
import {
  batchType,
  defineEvalStep,
  defineLocalTraining,
  defineModelFns,
  initialModel,
  modelType,
  type LocalTraining,
  type MlpShape,
} from '../../plans/fedavg-model';
import { plainAggregation } from '../../plans/fedavg-plain';
import { FEDAVG_OPTIONS } from '../../plans/fedavg';
import { intOption, nameOption, type OptionSpecs } from '../../plans/options';
import { applyOptimizer } from '../../plans/server-optimizers';
import type { ProgramBuilder, ProgramMeta } from '../builder';

/** Options of the library's FedAvg programs. */
export interface FedAvgProgramOptions {
  /** Training rounds, unrolled into the program's steps; the evaluation follows the last. */
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

/** The programs' options: the model and training ones are the FedAvg plan's, with its defaults. */
export const FEDAVG_PROGRAM_OPTIONS: OptionSpecs<FedAvgProgramOptions> = {
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

/** The FedAvg pieces registered with a program builder, for its `local_train` and steps. */
export interface FedAvgProgramParts {
  readonly shape: MlpShape;
  /** The model weights `<w0, b0, ...>`. */
  readonly M: StructType;
  /** The broadcast `<model=M>`, as the plan's C, so that local training is the plan's. */
  readonly C: StructType;
  /** One batch `<x, y>`. */
  readonly batch: StructType;
  /** The aggregated update U `<delta=M, examples, loss_sum>`. */
  readonly U: StructType;
  /** The plan's local training, from `<data, broadcast=<model=M>>`. */
  readonly train: (b: ComputationBuilder, p: Handle) => LocalTraining;
}

/**
 * Registers what both programs run: `initialize` (the plan's initial model, `<model=M>`), the plain
 * example-weighted aggregation `zero`, `accumulate`, `merge`, `report` of U, `apply` (server SGD at learning
 * rate 1: the new model is the weighted average), `train_metrics` (the report's loss, examples and clients)
 * and the evaluation (`evaluate` and `eval_*`, see {@link aggregateMetrics}).
 */
export function defineFedAvgProgram(pb: ProgramBuilder, o: FedAvgProgramOptions): FedAvgProgramParts {
  const shape = { layers: o.layers };
  const M = modelType(shape);
  const batch = batchType(shape);
  const C = named({ model: M });
  const { logits, loss } = defineModelFns(pb, shape);
  const train = defineLocalTraining(pb, shape, o, loss);
  const evalStep = defineEvalStep(pb, M, batch, logits, loss);
  const fold = plainAggregation(M, false);
  const sgd = { kind: 'sgd', lr: 1, momentum: 0 } as const;

  // Named `initialize` as the plan's: a random op's draw is seeded by the computation's name and node.
  pb.computation('initialize', undefined, (b) => b.struct({ model: initialModel(b, shape, o.seed) }));
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
  return { shape, M, C, batch, U: fold.U, train };
}

/** Aggregates the devices' updates U with the plain fold: the server value `<delta, examples, loss, clients>`. */
export function aggregateUpdates(
  pb: ProgramBuilder,
  update: string,
  minClients: number,
  result: string,
): string {
  return pb.aggregate(update, {
    zero: 'zero',
    accumulate: 'accumulate',
    merge: 'merge',
    report: 'report',
    minClients,
    result,
  });
}

/**
 * Each device scores a model (a client `<model=M>`) on its test batches with `evaluate`; the sums are
 * aggregated into the server value `<loss, accuracy, examples, clients>` (accuracy = correct / examples
 * over every device's test examples). Returns the aggregate's name and the client value to dispose.
 */
export function aggregateMetrics(
  pb: ProgramBuilder,
  testData: string,
  model: string,
  minClients: number,
  result: string,
): { readonly metrics: string; readonly scored: string } {
  const scored = pb.clientCall('evaluate', [testData, model], { result: `${result}_c` });
  const metrics = pb.aggregate(scored, {
    zero: 'eval_zero',
    accumulate: 'eval_accumulate',
    merge: 'eval_merge',
    report: 'eval_report',
    minClients,
    result,
  });
  return { metrics, scored };
}

/**
 * The program's population, data and cohort: `train` and `test` collections of digits-shaped examples whose
 * labels declare their range (as the plan's, so every loader of client data refuses one outside it).
 */
export function fedAvgProgramMeta(
  o: FedAvgProgramOptions,
  parts: FedAvgProgramParts,
  name: string,
  description: string,
): ProgramMeta {
  const element = named({
    x: parts.batch.fields[0]!.type,
    y: { ...tensorType('int32', [null]), range: [0, o.layers.at(-1)! - 1] },
  });
  return {
    name,
    description,
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
  };
}

/**
 * The evaluation: `evaluate` (`<data, broadcast=<model=M>> -> <loss_sum, correct, examples>`, a fold of the
 * plan's eval_step) on each device, summed by `eval_*` into `<loss, accuracy, examples, clients>`.
 */
function defineEvaluation(
  pb: ProgramBuilder,
  C: StructType,
  batch: StructType,
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
