import { PlanBuilder, type FnRef } from '../compute/builder';
import { sequenceType, tensorType, type StructType, type TffType } from '../compute/types';
import type { Plan } from '../generated/plan';
import { boundModeOption, dataOptions, i32, named } from './common';
import {
  batchType,
  defineEvalStep,
  defineLocalTraining,
  defineModelFns,
  initialModel,
  modelType,
} from './fedavg-model';
import {
  checkDpOptions,
  dpDescription,
  dpOptions,
  dpSection,
  roundsWithinBudget,
  type DpOptions,
} from './dp-options';
import { checkDpFedAvg, defineDpRound, dpBroadcastType, FEDAVG_DP_PATHS } from './fedavg-dp';
import { definePlainRound, fedAvgBounds } from './fedavg-plain';
import { checkSecureFedAvg, defineSecureRound, fixedPointScale } from './fedavg-secure';
import {
  boolOption,
  choiceOption,
  intListOption,
  intOption,
  numberOption,
  optionalChoiceOption,
  scheduleOptions,
  secAggOptions,
  secureSchedule,
  resolveOptions,
  type OptionSpecs,
  type SecAggOptions,
  type ScheduleOptions,
} from './options';
import { initialOptimizerState, optimizerStateType, type ServerOptimizer } from './server-optimizers';

/** Options of the FedAvg plan. */
export interface FedAvgOptions extends ScheduleOptions, SecAggOptions, DpOptions {
  collection: string;
  batchSize: number;
  /** Input width, hidden widths, classes. */
  layers: readonly number[];
  clientLr: number;
  epochs: number;
  /**
   * How clients are weighted in the average: by their (capped) example count, or every client 1. Unset, it is
   * examples, or uniform with `secure` or `dp` (the only weighting they take; see checkSecureFedAvg and
   * checkDpFedAvg).
   */
  weighting: 'examples' | 'uniform' | undefined;
  /** The largest example count (weight) one client counts for; larger counts and claims are clipped. */
  maxExamples: number;
  /** Bound on the L2 norm of a client's model change (start minus trained weights, all layers together). */
  maxNorm: number;
  /** What the server does to an update whose model change is over maxNorm. */
  boundMode: 'clip' | 'reject';
  /**
   * Sends each client's model change through secure_sum_bitwidth (V1), in fixed point, so that the plain
   * update U carries nothing of the client's; see defineSecureRound.
   */
  secure: boolean;
  /** Secure: every coordinate of a client's model change is clipped to [-clipRange, clipRange]. */
  clipRange: number;
  /** Secure: bits per fixed-point coordinate, the secure sum's bitwidth. */
  bitwidth: number;
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
  weighting: optionalChoiceOption(
    'client weight in the average: capped example count, or 1 per client',
    'examples; uniform with --secure or --dp',
    ['examples', 'uniform'],
  ),
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
  secure: boolOption(
    'send the model change through secure_sum_bitwidth in fixed point; the plain update carries nothing',
    false,
  ),
  ...secAggOptions(),
  // On the digits reference run no coordinate of a client's model change goes past 0.92 in 50 rounds
  // (99% stay under 0.18), so 1 clips nothing there; the grid step is 2 c / (2^bitwidth - 2).
  clipRange: numberOption(
    "--secure: each coordinate of a client's model change is clipped to [-c, c] before fixed point",
    1,
    { min: 0, exclusiveMin: true, max: 1e6 },
  ),
  // 16 bits make a grid step of 3e-5 at c = 1, and leave room for 32768 clients a round within int32. The
  // client rounds in float32, which holds integers exactly only up to 2^24.
  bitwidth: intOption(
    '--secure: bits per coordinate; clients selected a round x (2^bits - 1) must stay below 2^31',
    16,
    { min: 2, max: 24 },
  ),
  ...dpOptions(),
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
 * counts for more than maxExamples examples, whatever it claims. With `secure`, the round is
 * defineSecureRound's instead: uniform weights, the change in fixed point through secure_sum_bitwidth. With
 * `dp`, it is defineDpRound's: uniform weights, and a `dp` section by which the server clips each change,
 * noises their sum and charges the privacy spent (no update bounds: the server's clip is the bound).
 *
 * S = <model=M, optimizer, round>, C = <model=M> (with `dp` also the round's clip), evaluate: <state=S,
 * data=D> -> <loss, accuracy, examples>; U, A, R and X are definePlainRound's, defineSecureRound's or
 * defineDpRound's.
 */
export function buildFedAvg(options: Partial<FedAvgOptions> = {}): Plan {
  const o = resolveOptions(FEDAVG_OPTIONS, options);
  // With dp the change's coordinates range over the clip: |x_j| <= ||x|| <= clip.
  const fixedPoint = {
    clipRange: o.secure && o.dp && o.clip !== undefined ? o.clip : o.clipRange,
    bitwidth: o.bitwidth,
  };
  checkDpOptions(o, o);
  if (o.dp) checkDpFedAvg(o);
  if (o.secure) checkSecureFedAvg(fixedPoint, o.weighting, o);
  const uniform = (o.weighting ?? (o.secure || o.dp ? 'uniform' : 'examples')) === 'uniform';
  const shape = { layers: o.layers };
  const M = modelType(shape);
  const batch = batchType(shape);
  const opt = serverOptimizerOf(o);
  const S = named({ model: M, optimizer: optimizerStateType(opt, M), round: i32() });
  const C = o.dp && !o.secure ? dpBroadcastType(M) : named({ model: M });

  const pb = new PlanBuilder();
  const { logits, loss } = defineModelFns(pb, shape);
  const train = defineLocalTraining(pb, shape, o, loss);

  pb.computation('initialize', undefined, (b) =>
    b.struct({
      model: initialModel(b, shape, o.seed),
      optimizer: initialOptimizerState(b, opt, M),
      round: b.scalar(0, 'int32'),
    }),
  );
  // With dp the server writes each round's clip into the broadcast; prepare puts the first round's there.
  pb.computation('prepare', S, (b, s) =>
    b.struct({ model: b.field(s, 'model'), ...(o.dp && !o.secure ? { clip: b.scalar(o.clip!) } : {}) }),
  );
  const round = { M, S, C, batch, opt, train };
  if (o.secure)
    defineSecureRound(pb, { ...round, fixedPoint, maxNorm: o.dp ? o.clip! : o.maxNorm, dp: o.dp });
  else if (o.dp) defineDpRound(pb, { ...round, adaptive: o.adaptiveClip });
  else definePlainRound(pb, { ...round, uniform, maxExamples: o.maxExamples, epochs: o.epochs });
  defineEvaluate(pb, S, batch, logits, loss);

  const plan = pb.build({
    name: o.secure ? (o.dp ? 'fedavg-secure-dp' : 'fedavg-secure') : o.dp ? 'fedavg-dp' : 'fedavg',
    description: descriptionOf(o, opt, uniform),
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
    schedule: secureSchedule(o, o.secure),
    // The secure round has no plain update to bound: its bounds are the secure sum's range. The dp round's
    // bound is the server's clip.
    update_bounds: o.secure || o.dp ? undefined : fedAvgBounds(o),
    dp: o.dp
      ? dpSection(
          o,
          o,
          FEDAVG_DP_PATHS,
          o.secure ? { sum: 'bitwidth', scale: fixedPointScale(fixedPoint) } : undefined,
        )
      : undefined,
  });
  if (!o.dp) return plan;
  return {
    ...plan,
    description: `${plan.description} ${dpDescription(o, roundsWithinBudget(plan), o.rounds, o.secure)}`,
  };
}

function descriptionOf(o: FedAvgOptions, opt: ServerOptimizer, uniform: boolean): string {
  const server = opt.kind === 'adam' ? `Adam (lr ${opt.lr})` : `SGD (lr ${opt.lr}, momentum ${opt.momentum})`;
  const averaging = o.dp
    ? `uniform averaging${o.secure ? ` through secure_sum_bitwidth (${o.bitwidth}-bit fixed point over the clip)` : ''}, no training loss released`
    : o.secure
      ? `uniform averaging through secure_sum_bitwidth (each coordinate clipped to ±${o.clipRange}, ${o.bitwidth}-bit fixed point), model changes clipped by clients to L2 norm ${o.maxNorm}`
      : `${uniform ? 'uniform' : `example-weighted (at most ${o.maxExamples} per client)`} averaging, model changes bounded to L2 norm ${o.maxNorm} (${o.boundMode})`;
  return `FedAvg of a ${o.layers.join('-')} MLP: ${o.epochs} local epochs of SGD (lr ${o.clientLr}, batch ${o.batchSize}), server ${server}, ${averaging}.`;
}

/**
 * `evaluate`: `<state=S, data=D> -> <loss, accuracy, examples>` of the server model on held-out batches, a fold
 * of `eval_step` (one batch's loss and correct predictions added to the running sums).
 */
function defineEvaluate(pb: PlanBuilder, S: StructType, batch: TffType, logits: FnRef, loss: FnRef): void {
  const M = S.fields[0]!.type;
  const evalStep = defineEvalStep(pb, M, batch, logits, loss);
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
}

export { fedAvgBounds } from './fedavg-plain';
