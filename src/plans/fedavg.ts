import { PlanBuilder } from '../compute/builder';
import { sequenceType, tensorType } from '../compute/types';
import type { Plan, UpdateBounds } from '../generated/plan';
import {
  boundModeOption,
  dataOptions,
  defineSecureParams,
  f32,
  i32,
  named,
  updateParam,
  workParam,
  workResult,
} from './common';
import { batchType, defineModelFns, initialModel, modelType } from './fedavg-model';
import {
  choiceOption,
  intListOption,
  intOption,
  numberOption,
  scheduleOptions,
  toSchedule,
  resolveOptions,
  type OptionSpecs,
  type ScheduleOptions,
} from './options';
import {
  applyOptimizer,
  initialOptimizerState,
  optimizerStateType,
  type ServerOptimizer,
} from './server-optimizers';

/** Options of the FedAvg plan. */
export interface FedAvgOptions extends ScheduleOptions {
  collection: string;
  batchSize: number;
  /** Input width, hidden widths, classes. */
  layers: readonly number[];
  clientLr: number;
  epochs: number;
  /** How clients are weighted in the average: by their (capped) example count, or every client 1. */
  weighting: 'examples' | 'uniform';
  /** The largest example count (weight) one client counts for; larger counts and claims are clipped. */
  maxExamples: number;
  /** Bound on the L2 norm of a client's model change (start minus trained weights, all layers together). */
  maxNorm: number;
  /** What the server does to an update whose model change is over maxNorm. */
  boundMode: 'clip' | 'reject';
  optimizer: 'sgd' | 'adam';
  serverLr: number;
  momentum: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Seeds the initial weights. */
  seed: number;
}

/**
 * The declared options of the FedAvg plan. The defaults are the data README's reference run on the digits
 * data (MLP 64-32-10, 20 clients a round, 5 local epochs, batch 8, client lr 0.3, plain FedAvg, 50 rounds).
 */
export const FEDAVG_OPTIONS: OptionSpecs<FedAvgOptions> = {
  ...dataOptions('digits', 8),
  layers: intListOption('layer widths: inputs, hidden..., classes (relu hidden layers)', [64, 32, 10], {
    min: 1,
    max: 65536,
    minLength: 2,
  }),
  clientLr: numberOption('client SGD learning rate', 0.3, { min: 0, exclusiveMin: true }),
  epochs: intOption('local epochs over the client data', 5, { min: 1, max: 10_000 }),
  weighting: choiceOption('client weight in the average: capped example count, or 1 per client', 'examples', [
    'examples',
    'uniform',
  ]),
  maxExamples: intOption('most examples one client counts for; larger claims are clipped', 1000, {
    min: 1,
    max: 2 ** 31 - 1,
  }),
  // Honest clients of the digits reference run change the model by an L2 norm of 0.5 to 3.5 a round.
  maxNorm: numberOption("bound on the L2 norm of a client's model change (all weights together)", 100, {
    min: 0,
    exclusiveMin: true,
    max: 3e38,
  }),
  boundMode: boundModeOption('the norm bound'),
  optimizer: choiceOption('server optimizer', 'sgd', ['sgd', 'adam']),
  serverLr: numberOption('server learning rate (sgd: 1 with momentum 0 is plain FedAvg)', 1, {
    min: 0,
    exclusiveMin: true,
  }),
  momentum: numberOption('server SGD momentum', 0, { min: 0, max: 1 }),
  beta1: numberOption('server Adam beta1', 0.9, { min: 0, max: 1 }),
  beta2: numberOption('server Adam beta2', 0.999, { min: 0, max: 1 }),
  epsilon: numberOption('server Adam epsilon', 1e-7, { min: 0, exclusiveMin: true }),
  seed: intOption('seed of the initial weights', 0, { min: 0, max: 2 ** 31 - 1 }),
  ...scheduleOptions({ rounds: 50, targetClients: 20 }),
};

/** The server optimizer an options object selects. */
export function serverOptimizerOf(o: FedAvgOptions): ServerOptimizer {
  return o.optimizer === 'adam'
    ? { kind: 'adam', lr: o.serverLr, beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon }
    : { kind: 'sgd', lr: o.serverLr, momentum: o.momentum };
}

/**
 * Federated Averaging of a dense MLP classifier with a server optimizer (McMahan et al.; TFF's
 * `build_weighted_fed_avg`). Clients run `epochs` of SGD over their batches (a fold of value_and_grad
 * steps) and send their example-weighted pseudo-gradient (start weights minus trained weights, times their
 * example count, at most maxExamples, or 1 with uniform weighting); the server averages by that weight and
 * applies SGD with momentum or Adam. The plan declares update bounds (fedAvgBounds) so that no client
 * counts for more than maxExamples examples, whatever it claims.
 *
 * S = <model=M, optimizer, round>, C = <model=M>, U = <delta=M, examples, loss_sum>,
 * A = <delta=M, examples, loss_sum, clients>, R = <delta=M, examples, loss, clients>,
 * X = <train_loss, examples, clients>, evaluate: <state=S, data=D> -> <loss, accuracy, examples>.
 */
export function buildFedAvg(options: Partial<FedAvgOptions> = {}): Plan {
  const o = resolveOptions(FEDAVG_OPTIONS, options);
  const uniform = o.weighting === 'uniform';
  const shape = { layers: o.layers };
  const M = modelType(shape);
  const batch = batchType(shape);
  const opt = serverOptimizerOf(o);
  const S = named({ model: M, optimizer: optimizerStateType(opt, M), round: i32() });
  const C = named({ model: M });
  const U = named({ delta: M, examples: i32(), loss_sum: f32() });
  const A = named({ delta: M, examples: i32(), loss_sum: f32(), clients: i32() });
  const R = named({ delta: M, examples: i32(), loss: f32(), clients: i32() });

  const pb = new PlanBuilder();
  const { logits, loss } = defineModelFns(pb, shape);

  const TrainState = named({ params: M, seen: i32(), loss_sum: f32() });
  const trainStep = pb.fn('train_step', named({ state: TrainState, batch }), (b, p) => {
    const params = b.get(p, 'state.params');
    const data = b.field(p, 'batch');
    const { value, grad } = b.valueAndGrad(loss, params, data, 'loss_and_grad');
    const n = b.dim(b.field(data, 'y'), 0, 'batch_size');
    return b.struct({
      params: b.tree.zip([params, grad], ([w, g]) => b.sub(w!, b.mul(g!, o.clientLr))),
      seen: b.add(b.get(p, 'state.seen'), n, 'seen'),
      loss_sum: b.add(b.get(p, 'state.loss_sum'), b.mul(value, b.cast(n, 'float32')), 'loss_sum'),
    });
  });

  const EvalState = named({ params: M, loss_sum: f32(), correct: i32(), seen: i32() });
  const evalStep = pb.fn('eval_step', named({ state: EvalState, batch }), (b, p) => {
    const params = b.get(p, 'state.params');
    const data = b.field(p, 'batch');
    const y = b.field(data, 'y');
    const n = b.dim(y, 0, 'batch_size');
    const z = b.call(logits, b.struct({ params, x: b.field(data, 'x') }), 'logits');
    const batchLoss = b.call(loss, b.struct({ params, batch: data }), 'batch_loss');
    const correct = b.reduceSum(b.cast(b.equal(b.argmax(z, 1), y), 'int32'), {}, 'correct');
    return b.struct({
      params,
      loss_sum: b.add(b.get(p, 'state.loss_sum'), b.mul(batchLoss, b.cast(n, 'float32'))),
      correct: b.add(b.get(p, 'state.correct'), correct),
      seen: b.add(b.get(p, 'state.seen'), n),
    });
  });

  pb.computation('initialize', undefined, (b) =>
    b.struct({
      model: initialModel(b, shape, o.seed),
      optimizer: initialOptimizerState(b, opt, M),
      round: b.scalar(0, 'int32'),
    }),
  );
  pb.computation('prepare', S, (b, s) => b.struct({ model: b.field(s, 'model') }));

  pb.computation('work', workParam(batch, C), (b, p) => {
    const start = b.get(p, 'broadcast.model');
    const init = b.struct({ params: start, seen: b.scalar(0, 'int32'), loss_sum: b.scalar(0) }, 'train_init');
    const trained = b.fold(b.field(p, 'data'), init, trainStep, { epochs: o.epochs }, 'trained');
    const seen = b.field(trained, 'seen');
    // Every epoch visits every example once, so the client's example count is seen / epochs; it counts for
    // at most maxExamples, the bound the server enforces on every upload's claim.
    const examples = b.minimum(b.floorDiv(seen, o.epochs), o.maxExamples, 'examples');
    const weight = uniform ? b.scalar(1, 'float32', 'weight') : b.cast(examples, 'float32', 'weight');
    const meanLoss = b.div(b.field(trained, 'loss_sum'), b.maximum(b.cast(seen, 'float32'), 1), 'mean_loss');
    const delta = b.tree.zip([start, b.field(trained, 'params')], ([w0, w1]) =>
      b.mul(b.sub(w0!, w1!), weight),
    );
    return workResult(
      b,
      b.struct({ delta, examples, loss_sum: b.mul(meanLoss, weight, 'weighted_loss') }, 'update'),
    );
  });

  pb.computation('zero', undefined, (b) => b.tree.zeros(A));
  pb.computation('accumulate', named({ accumulator: A, update: U }), (b, p) => {
    const acc = b.field(p, 'accumulator');
    const u = b.field(p, 'update');
    return b.struct({
      delta: b.tree.add(b.field(acc, 'delta'), b.field(u, 'delta')),
      examples: b.add(b.field(acc, 'examples'), b.field(u, 'examples')),
      loss_sum: b.add(b.field(acc, 'loss_sum'), b.field(u, 'loss_sum')),
      clients: b.add(b.field(acc, 'clients'), 1),
    });
  });
  pb.computation('merge', named({ a: A, b: A }), (b, p) => b.tree.add(b.field(p, 'a'), b.field(p, 'b')));
  pb.computation('report', A, (b, a) => {
    // The total weight: examples, or clients when uniform. An aggregate without any averages to zero rather
    // than NaN; it is never released anyway.
    const total = b.cast(b.field(a, uniform ? 'clients' : 'examples'), 'float32');
    const n = b.maximum(total, 1, 'total_weight');
    return b.struct({
      delta: b.tree.div(b.field(a, 'delta'), n),
      examples: b.field(a, 'examples'),
      loss: b.div(b.field(a, 'loss_sum'), n, 'train_loss'),
      clients: b.field(a, 'clients'),
    });
  });
  defineSecureParams(pb);

  pb.computation('update', updateParam(S, R), (b, p) => {
    const state = b.field(p, 'state');
    const report = b.get(p, 'aggregates.report');
    const step = b.add(b.field(state, 'round'), 1, 'round');
    const next = applyOptimizer(
      b,
      opt,
      b.field(state, 'model'),
      b.field(report, 'delta'),
      b.field(state, 'optimizer'),
      step,
    );
    const newState = b.struct({ model: next.weights, optimizer: next.state, round: step }, 'state');
    const output = b.struct(
      {
        train_loss: b.field(report, 'loss'),
        examples: b.field(report, 'examples'),
        clients: b.field(report, 'clients'),
      },
      'output',
    );
    return b.struct([newState, output]);
  });

  pb.computation('evaluate', named({ state: S, data: sequenceType(batch) }), (b, p) => {
    const init = b.struct(
      {
        params: b.get(p, 'state.model'),
        loss_sum: b.scalar(0),
        correct: b.scalar(0, 'int32'),
        seen: b.scalar(0, 'int32'),
      },
      'eval_init',
    );
    const out = b.fold(b.field(p, 'data'), init, evalStep, {}, 'evaluated');
    const n = b.maximum(b.cast(b.field(out, 'seen'), 'float32'), 1);
    return b.struct({
      loss: b.div(b.field(out, 'loss_sum'), n, 'loss'),
      accuracy: b.div(b.cast(b.field(out, 'correct'), 'float32'), n, 'accuracy'),
      examples: b.field(out, 'seen'),
    });
  });

  const layers = o.layers.join('-');
  return pb.build({
    name: 'fedavg',
    description: `FedAvg of a ${layers} MLP: ${o.epochs} local epochs of SGD (lr ${o.clientLr}, batch ${o.batchSize}), server ${
      opt.kind === 'adam' ? `Adam (lr ${opt.lr})` : `SGD (lr ${opt.lr}, momentum ${opt.momentum})`
    }, ${uniform ? 'uniform' : `example-weighted (at most ${o.maxExamples} per client)`} averaging, model changes bounded to L2 norm ${o.maxNorm} (${o.boundMode}).`,
    client_data: {
      collection: o.collection,
      // Labels are class indices: one_hot zeroes a label outside [0, classes), which would train nothing, so
      // the data spec declares their range and every loader of client data refuses one outside it.
      element: named({
        x: batch.fields[0]!.type,
        y: { ...tensorType('int32', [null]), range: [0, o.layers.at(-1)! - 1] },
      }),
      batch_size: o.batchSize,
    },
    schedule: toSchedule(o),
    update_bounds: fedAvgBounds(o),
  });
}

/** The largest mean training loss an update may claim; only there to keep the released loss finite. */
const MAX_MEAN_LOSS = 1e4;

/**
 * FedAvg's update bounds. U's delta and loss_sum are the client's values times its weight (its capped
 * example count, or 1), so the weight bound scales them: the example claim is clipped to [0, maxExamples],
 * the weighted loss to [0, MAX_MEAN_LOSS x weight], and the weighted delta's L2 norm to maxNorm x
 * weight. One client then moves the average by at most what one full-weight client with a model change of
 * norm maxNorm would, however many examples it claims.
 */
export function fedAvgBounds(o: FedAvgOptions): UpdateBounds {
  const maxWeight = o.weighting === 'uniform' ? 1 : o.maxExamples;
  return {
    ranges: [
      { path: 'examples', min: 0, max: o.maxExamples, mode: 'clip' },
      { path: 'loss_sum', min: 0, max: MAX_MEAN_LOSS * maxWeight, mode: 'clip' },
    ],
    norms: [{ paths: ['delta'], max_norm: o.maxNorm * maxWeight, mode: o.boundMode }],
  };
}
