import type { ComputationBuilder, Handle } from '../compute/builder';
import { EMPTY_STRUCT, type TffType } from '../compute/types';
import { named } from './common';

/** Server SGD with momentum; lr 1 and momentum 0 is plain FedAvg (the new model is the clients' average). */
export interface SgdConfig {
  readonly kind: 'sgd';
  readonly lr: number;
  readonly momentum: number;
}

/** Server Adam with bias correction, as TFF's `optimizers.build_adam`. */
export interface AdamConfig {
  readonly kind: 'adam';
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
}

/** A server optimizer applied to the averaged pseudo-gradient (old weights minus client weights). */
export type ServerOptimizer = SgdConfig | AdamConfig;

/** The optimizer state kept in S: `<velocity=M>` for SGD with momentum, `<>` without, `<m=M, v=M>` for Adam. */
export function optimizerStateType(opt: ServerOptimizer, M: TffType): TffType {
  if (opt.kind === 'adam') return named({ m: M, v: M });
  return opt.momentum > 0 ? named({ velocity: M }) : EMPTY_STRUCT;
}

/** The optimizer's initial state: zeros for every slot. */
export function initialOptimizerState(b: ComputationBuilder, opt: ServerOptimizer, M: TffType): Handle {
  return b.tree.zeros(optimizerStateType(opt, M));
}

/**
 * One optimizer step: returns the new weights and optimizer state. `step` is the 1-based step number (an
 * int32 scalar), used by Adam's bias correction.
 */
export function applyOptimizer(
  b: ComputationBuilder,
  opt: ServerOptimizer,
  weights: Handle,
  grad: Handle,
  state: Handle,
  step: Handle,
): { weights: Handle; state: Handle } {
  if (opt.kind === 'sgd') {
    if (opt.momentum === 0) {
      return { weights: b.tree.zip([weights, grad], ([w, g]) => b.sub(w!, b.mul(g!, opt.lr))), state };
    }
    // TFF's sgdm: v = momentum * v + g; w = w - lr * v.
    const velocity = b.tree.zip([b.field(state, 'velocity'), grad], ([v, g]) =>
      b.add(b.mul(v!, opt.momentum), g!),
    );
    return {
      weights: b.tree.zip([weights, velocity], ([w, v]) => b.sub(w!, b.mul(v!, opt.lr))),
      state: b.struct({ velocity }),
    };
  }
  // TFF's adam: m and v are biased moment estimates; the correction is folded into the step size,
  // lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t), and epsilon is added to sqrt(v) (Keras' epsilon-hat).
  const { beta1, beta2, epsilon } = opt;
  const m = b.tree.zip([b.field(state, 'm'), grad], ([mi, g]) =>
    b.add(b.mul(mi!, beta1), b.mul(g!, 1 - beta1)),
  );
  const v = b.tree.zip([b.field(state, 'v'), grad], ([vi, g]) =>
    b.add(b.mul(vi!, beta2), b.mul(b.square(g!), 1 - beta2)),
  );
  const t = b.cast(step, 'float32', 't');
  const correction = b.div(b.sqrt(b.sub(1, b.pow(beta2, t))), b.sub(1, b.pow(beta1, t)));
  const lrT = b.mul(correction, opt.lr, 'lr_t');
  const weightsOut = b.tree.zip([weights, m, v], ([w, mi, vi]) =>
    b.sub(w!, b.mul(lrT, b.div(mi!, b.add(b.sqrt(vi!), epsilon)))),
  );
  return { weights: weightsOut, state: b.struct({ m, v }) };
}
