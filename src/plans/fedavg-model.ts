import type { ComputationBuilder, FnRef, FunctionSet, Handle } from '../compute/builder';
import type { StructType, TffType } from '../compute/types';
import { f32, i32, named } from './common';
import { applyOptimizer, type ServerOptimizer } from './server-optimizers';

/**
 * The dense MLP of the FedAvg plan: `layers` lists the input width, the hidden widths and the number of
 * classes (e.g. 64,32,10: 64 features, one relu layer of 32, 10 classes).
 */
export interface MlpShape {
  readonly layers: readonly number[];
}

/** The model weights type `<w0, b0, w1, b1, ...>`: kernel [in, out] and bias [out] per layer. */
export function modelType({ layers }: MlpShape): StructType {
  const fields: Record<string, ReturnType<typeof f32>> = {};
  for (let i = 0; i + 1 < layers.length; i++) {
    fields[`w${i}`] = f32([layers[i]!, layers[i + 1]!]);
    fields[`b${i}`] = f32([layers[i + 1]!]);
  }
  return named(fields);
}

/** One batch of labelled examples, `<x=float32[?,inputs], y=int32[?]>`. */
export function batchType({ layers }: MlpShape): StructType {
  return named({ x: f32([null, layers[0]!]), y: i32([null]) });
}

/** The functions the model contributes to a plan. */
export interface ModelFns {
  /** `<params=M, x=float32[?,in]> -> float32[?,classes]`. */
  readonly logits: FnRef;
  /** `<params=M, batch=<x, y>> -> float32[]`: mean softmax cross-entropy of the batch. */
  readonly loss: FnRef;
}

/** Registers `logits` and `loss` with the plan builder. */
export function defineModelFns(pb: FunctionSet, shape: MlpShape): ModelFns {
  const M = modelType(shape);
  const depth = shape.layers.length - 1;
  const classes = shape.layers[depth]!;
  const logits = pb.fn('logits', named({ params: M, x: f32([null, shape.layers[0]!]) }), (b, p) => {
    let h = b.field(p, 'x');
    for (let i = 0; i < depth; i++) {
      const z = b.add(b.matmul(h, b.get(p, `params.w${i}`)), b.get(p, `params.b${i}`), `dense${i}`);
      h = i + 1 < depth ? b.relu(z, `relu${i}`) : z;
    }
    return h;
  });
  const loss = pb.fn('loss', named({ params: M, batch: batchType(shape) }), (b, p) => {
    const z = b.call(logits, b.struct({ params: b.field(p, 'params'), x: b.get(p, 'batch.x') }), 'logits');
    // Cross-entropy from log_softmax and one_hot rather than a fused op: the IR stays small and the
    // gradient comes from TensorFlow.js autodiff through ordinary ops.
    const picked = b.reduceSum(
      b.mul(b.oneHot(b.get(p, 'batch.y'), classes), b.logSoftmax(z)),
      { axes: [1] },
      'log_likelihood',
    );
    return b.neg(b.reduceMean(picked), 'loss');
  });
  return { logits, loss };
}

/**
 * Fresh weights, Glorot-normal kernels (stddev sqrt(2 / (fan_in + fan_out))) and zero biases, drawn with
 * seeded random_normal so that a plan with the same seed always starts from the same model. Server only.
 */
export function initialModel(b: ComputationBuilder, { layers }: MlpShape, seed: number): Handle {
  const fields: Record<string, Handle> = {};
  for (let i = 0; i + 1 < layers.length; i++) {
    const [fanIn, fanOut] = [layers[i]!, layers[i + 1]!];
    fields[`w${i}`] = b.randomNormal(
      [fanIn, fanOut],
      { stddev: Math.sqrt(2 / (fanIn + fanOut)), seed: seed + i },
      `w${i}`,
    );
    fields[`b${i}`] = b.const('float32', [fanOut], 0, `b${i}`);
  }
  return b.struct(fields, 'model');
}

/**
 * How clients train: `epochs` passes of SGD with learning rate `clientLr` over their batches, the examples
 * reshuffled between passes from `seed` (the plan's seed).
 */
export interface LocalSgd {
  readonly clientLr: number;
  readonly epochs: number;
  readonly seed: number;
}

/** What every FedAvg round (plain, secure, dp) is defined from: the plan's types, optimizer and training. */
export interface RoundParts {
  readonly M: StructType;
  readonly S: TffType;
  readonly C: TffType;
  readonly batch: TffType;
  readonly opt: ServerOptimizer;
  readonly train: (b: ComputationBuilder, p: Handle) => LocalTraining;
}

/** What local training gives `work`, as handles in the `work` computation. */
export interface LocalTraining {
  /** The broadcast model the client started from. */
  readonly start: Handle;
  /** The trained model. */
  readonly trained: Handle;
  /** Examples visited over every epoch (int32): the client's example count times epochs. */
  readonly seen: Handle;
  /** The mean training loss over every example visited (float32). */
  readonly meanLoss: Handle;
}

/**
 * Registers `train_step` (one SGD step on one batch) and returns the start of `work` shared by the plain and
 * secure FedAvg rounds: a fold of that step over the client's batches, `epochs` times, from the broadcast
 * model. `p` is `work`'s parameter `<data, broadcast=<model>>`.
 */
export function defineLocalTraining(
  pb: FunctionSet,
  shape: MlpShape,
  sgd: LocalSgd,
  loss: FnRef,
): (b: ComputationBuilder, p: Handle) => LocalTraining {
  const M = modelType(shape);
  const TrainState = named({ params: M, seen: i32(), loss_sum: f32() });
  const trainStep = pb.fn('train_step', named({ state: TrainState, batch: batchType(shape) }), (b, p) => {
    const params = b.get(p, 'state.params');
    const data = b.field(p, 'batch');
    const { value, grad } = b.valueAndGrad(loss, params, data, 'loss_and_grad');
    const n = b.dim(b.field(data, 'y'), 0, 'batch_size');
    return b.struct({
      params: b.tree.zip([params, grad], ([w, g]) => b.sub(w!, b.mul(g!, sgd.clientLr))),
      seen: b.add(b.get(p, 'state.seen'), n, 'seen'),
      loss_sum: b.add(b.get(p, 'state.loss_sum'), b.mul(value, b.cast(n, 'float32')), 'loss_sum'),
    });
  });
  return (b, p) => {
    const start = b.get(p, 'broadcast.model');
    const init = b.struct({ params: start, seen: b.scalar(0, 'int32'), loss_sum: b.scalar(0) }, 'train_init');
    const done = b.fold(
      b.field(p, 'data'),
      init,
      trainStep,
      { epochs: sgd.epochs, shuffleSeed: sgd.seed },
      'trained',
    );
    const seen = b.field(done, 'seen');
    const meanLoss = b.div(b.field(done, 'loss_sum'), b.maximum(b.cast(seen, 'float32'), 1), 'mean_loss');
    return { start, trained: b.field(done, 'params'), seen, meanLoss };
  };
}

/**
 * The server's step, shared by the plain and secure rounds: S' = `<model, optimizer, round>` after the server
 * optimizer applies the clients' mean model change (a pseudo-gradient) to S.
 */
export function nextServerState(
  b: ComputationBuilder,
  opt: ServerOptimizer,
  state: Handle,
  meanDelta: Handle,
): Handle {
  const step = b.add(b.field(state, 'round'), 1, 'round');
  const next = applyOptimizer(b, opt, b.field(state, 'model'), meanDelta, b.field(state, 'optimizer'), step);
  return b.struct({ model: next.weights, optimizer: next.state, round: step }, 'state');
}

/**
 * Registers `eval_step`: one batch's loss (times its size) and correct predictions added to the running
 * sums of `<params=M, loss_sum, correct, seen>`; a fold of it from zero sums scores a model on a sequence.
 */
export function defineEvalStep(
  pb: FunctionSet,
  M: TffType,
  batch: TffType,
  logits: FnRef,
  loss: FnRef,
): FnRef {
  const EvalState = named({ params: M, loss_sum: f32(), correct: i32(), seen: i32() });
  return pb.fn('eval_step', named({ state: EvalState, batch }), (b, p) => {
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
}
