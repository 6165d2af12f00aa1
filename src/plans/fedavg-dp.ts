import type { Handle, PlanBuilder } from '../compute/builder';
import type { StructType } from '../compute/types';
import { AppError } from '../errors';
import { defineSecureParams, f32, i32, named, updateParam, workParam, workResult } from './common';
import type { DpPaths } from './dp-options';
import { nextServerState, type RoundParts } from './fedavg-model';

/** What DP FedAvg's dp section names: the model change, the indicator, the count, the broadcast clip. */
export const FEDAVG_DP_PATHS: DpPaths = {
  record: 'delta',
  indicator: 'clipped',
  clientsCount: 'clients',
  clipBroadcast: 'clip',
};

/**
 * Throws AppError BAD_REQUEST, naming the option, when DP FedAvg cannot run with these options:
 *
 * - Example weighting: DP-FedAvg (McMahan et al. 2018; TFF's unweighted DP aggregators) bounds each client's
 *   share of the sum by the clip norm, which is the sensitivity the noise is calibrated to. A weight a
 *   client claims would scale its record past the clip, or, clipped after weighting, mean nothing.
 * - --secure with --adaptive-clip: the server cannot see the indicator of a change that travels in a
 *   secure sum, so the clip stays fixed.
 */
export function checkDpFedAvg(o: {
  weighting: string | undefined;
  secure: boolean;
  adaptiveClip: boolean;
}): void {
  if (o.secure && o.adaptiveClip) {
    throw new AppError(
      'BAD_REQUEST',
      'option --adaptive-clip: does not work with --secure (the server cannot see the clip indicator of a change that travels in a secure sum); use a fixed --clip',
    );
  }
  if (o.weighting === 'examples') {
    throw new AppError(
      'BAD_REQUEST',
      "option --weighting: examples does not work with --dp, where every client weighs 1 (the clip norm bounds each client's share of the sum, the sensitivity the noise is set to); use --weighting uniform or leave it out",
    );
  }
}

/** The broadcast of DP FedAvg: the model and the round's clip norm, which the server writes each round. */
export function dpBroadcastType(M: StructType): StructType {
  return named({ model: M, [FEDAVG_DP_PATHS.clipBroadcast]: f32() });
}

/** What defineDpRound needs from the FedAvg plan. */
/** With C = dpBroadcastType(M). */
export interface DpRound extends RoundParts {
  /** Whether clients report the adaptive-clipping indicator. */
  readonly adaptive: boolean;
}

/**
 * The round of DP FedAvg (DP-FedAvg, McMahan et al. 2018, with adaptive clipping after Andrew et al.), whose
 * `dp` section has the server clip each client's model change, sum the clipped changes, add Gaussian noise,
 * and write the noisy sum and the client count into A before `report`. Clients weigh 1 each.
 *
 * `work` clips the change to the broadcast's clip itself, as the server will, and with adaptive clipping
 * reports `clipped`: 0.5 when the change's norm was within the clip, -0.5 otherwise. `report` divides the
 * noisy sum by the client count, the unweighted mean of TFF's DP aggregators. U = <delta=M[, clipped]>,
 * A = <delta=M[, clipped], clients>, R = <delta=M, clients>, X = <clients>.
 */
export function defineDpRound(pb: PlanBuilder, r: DpRound): void {
  const { M, adaptive } = r;
  const indicator = adaptive ? { [FEDAVG_DP_PATHS.indicator]: f32() } : {};
  const U = named({ delta: M, ...indicator });
  const A = named({ delta: M, ...indicator, clients: i32() });
  const R = named({ delta: M, clients: i32() });

  pb.computation('work', workParam(r.batch, r.C), (b, p) => {
    const t = r.train(b, p);
    const clip = b.get(p, `broadcast.${FEDAVG_DP_PATHS.clipBroadcast}`);
    const change = b.tree.zip([t.start, t.trained], ([w0, w1]) => b.sub(w0!, w1!));
    const norm = b.sqrt(b.tree.sumOfSquares(change), 'change_norm');
    // An unchanged model (norm 0) keeps its zero change: the floor only keeps the quotient finite.
    const scale = b.minimum(b.div(clip, b.maximum(norm, 1e-12)), 1, 'clip_scale');
    const fields: Record<string, Handle> = { delta: b.tree.scale(change, scale) };
    if (adaptive) fields.clipped = b.where(b.greater(norm, clip), b.scalar(-0.5), b.scalar(0.5), 'clipped');
    return workResult(b, b.struct(fields, 'update'));
  });

  pb.computation('zero', undefined, (b) => b.tree.zeros(A));
  pb.computation('accumulate', named({ accumulator: A, update: U }), (b, p) => {
    const acc = b.field(p, 'accumulator');
    const u = b.field(p, 'update');
    return b.struct({
      delta: b.tree.add(b.field(acc, 'delta'), b.field(u, 'delta')),
      ...(adaptive ? { clipped: b.add(b.field(acc, 'clipped'), b.field(u, 'clipped')) } : {}),
      clients: b.add(b.field(acc, 'clients'), 1),
    });
  });
  pb.computation('merge', named({ a: A, b: A }), (b, p) => b.tree.add(b.field(p, 'a'), b.field(p, 'b')));
  pb.computation('report', A, (b, a) => {
    const n = b.maximum(b.cast(b.field(a, 'clients'), 'float32'), 1, 'client_count');
    return b.struct({ delta: b.tree.div(b.field(a, 'delta'), n), clients: b.field(a, 'clients') });
  });
  defineSecureParams(pb);

  pb.computation('update', updateParam(r.S, R), (b, p) => {
    const report = b.get(p, 'aggregates.report');
    const state = nextServerState(b, r.opt, b.field(p, 'state'), b.field(report, 'delta'));
    // No training loss: U may carry nothing but the clipped change and the indicator, since a loss summed
    // beside them would reach X without noise and bypass the mechanism.
    return b.struct([state, b.struct({ clients: b.field(report, 'clients') }, 'output')]);
  });
}
