import type { ComputationBuilder, Handle, PlanBuilder } from '../compute/builder';
import type { StructType } from '../compute/types';
import { AppError } from '../errors';
import {
  defineSecureParams,
  EMPTY,
  i32,
  maxClientsPerRound,
  named,
  updateParam,
  workParam,
  workResult,
  type SecureParam,
} from './common';
import { nextServerState, type RoundParts } from './fedavg-model';
import type { ScheduleOptions } from './options';

/** The largest int32, the most a secure sum may reach (the server's SecureSum.result refuses more). */
const INT32_MAX = 2 ** 31 - 1;

/**
 * The range a client's mean training loss is clipped to before it is encoded. The loss is only a metric;
 * a mean cross-entropy above 32 gives the right class a probability below e^-32, a model that has diverged,
 * and a narrow range keeps the metric fine-grained (16 bits: steps of 0.0005).
 */
export const SECURE_LOSS_RANGE = 32;

/** The fixed-point encoding of a client's model change in secure FedAvg. */
export interface FixedPoint {
  /** Every coordinate of the model change is clipped to [-clipRange, clipRange]. */
  readonly clipRange: number;
  /** Bits per encoded coordinate: the secure sum's bitwidth. */
  readonly bitwidth: number;
}

/**
 * The integer that encodes 0, h = 2^(bitwidth-1) - 1: [-c, c] maps onto [0, 2h] = [0, 2^bitwidth - 2] by
 * q = round(x h / c) + h. The grid is symmetric with zero on it because clients can only round to nearest
 * (see encodeCoordinate): on the grid [0, 2^bitwidth - 1], zero would sit halfway between two levels, and
 * every coordinate that does not move (half of the digits MLP's: always-blank pixels, dead relu units) would
 * drift by half a step every round. Honest clients never send the top level 2^bitwidth - 1.
 */
export function zeroLevel(bitwidth: number): number {
  return 2 ** (bitwidth - 1) - 1;
}

/**
 * Throws AppError BAD_REQUEST, naming the option, when secure FedAvg cannot run with these options:
 *
 * - Example weighting: every client weighs 1 under --secure. A weighted change spans up to maxExamples
 *   times the clip range, so the grid would coarsen by that factor for every client (or the sum pass int32),
 *   and the weight itself would have to travel through the secure sum too. Uniform weights keep one grid
 *   for all and bound each client's share of the average by the clip range alone (as TFF's unweighted
 *   FedAvg does under secure aggregation).
 * - The sum: every client selected in a round (target x over-selection) adds up to 2^bitwidth - 1 to each
 *   coordinate, and the exact sum must fit int32. That also keeps SecAgg+'s modulus 2^(bitwidth +
 *   ceil(log2 n)) within 2^32, far below its 2^52 limit.
 */
export function checkSecureFedAvg(fp: FixedPoint, weighting: string | undefined, o: ScheduleOptions): void {
  if (weighting === 'examples') {
    throw new AppError(
      'BAD_REQUEST',
      'option --weighting: examples does not work with --secure, where every client weighs 1 (an example-weighted change would need a clip range maxExamples times wider); use --weighting uniform or leave it out',
    );
  }
  const n = maxClientsPerRound(o);
  const worst = n * (2 ** fp.bitwidth - 1);
  if (worst > INT32_MAX) {
    let fits = fp.bitwidth;
    while (fits > 0 && n * (2 ** fits - 1) > INT32_MAX) fits--;
    throw new AppError(
      'BAD_REQUEST',
      `option --bitwidth: ${n} clients a round (--target-clients ${o.targetClients} x --over-selection ${o.overSelection}) of up to 2^${fp.bitwidth}-1 each can sum to ${worst}, beyond int32 (2^31-1); ${
        fits >= 2
          ? `use --bitwidth ${fits} or less, or fewer clients a round`
          : 'select fewer clients a round'
      }`,
    );
  }
}

/**
 * The secure-sum update V1 of secure FedAvg: `<delta=M as int32, loss=int32, clients=int32>`; with dp, no
 * loss (it would be released without noise).
 */
export function secureUpdateType(M: StructType, dp = false): StructType {
  return named(
    dp ? { delta: int32Like(M), clients: i32() } : { delta: int32Like(M), loss: i32(), clients: i32() },
  );
}

/**
 * The integer units per unit of a model-change coordinate in secure FedAvg's fixed point, h / c: what a dp
 * section's `scale` is for a change sent through the secure sum.
 */
export function fixedPointScale(fp: FixedPoint): number {
  return zeroLevel(fp.bitwidth) / fp.clipRange;
}

/** What defineSecureRound needs from the FedAvg plan. */
export interface SecureRound extends RoundParts {
  readonly fixedPoint: FixedPoint;
  /** Honest clients scale their model change down to this L2 norm before clipping coordinates. */
  readonly maxNorm: number;
  /**
   * DP (`fedavg --dp --secure`): maxNorm is the dp clip and equals the clip range, no loss travels, and the
   * server adds the noise to the unmasked sum (the plan's dp section names delta, the count and the scale).
   */
  readonly dp?: boolean;
}

/**
 * The round of secure FedAvg: `work` through `update` with nothing client-derived in the plain update.
 * Each client clips its model change (L2 norm to maxNorm, then every coordinate to [-c, c]), encodes it in
 * fixed point, and sends it with its clipped, encoded mean loss and a count of 1 as V1, through
 * secure_sum_bitwidth; U, A and R are `<>`. `update` decodes the mean change from the sums and the count
 * (sum - n h, times c / h, over n) and applies the server optimizer. X = `<train_loss, clients>`.
 *
 * The count travels in V1 so that it counts exactly the clients whose values are in the sum, and takes
 * bitwidth 1, so a hostile client can claim 0 or 1, never more: claiming 0 shifts the decoded sum by one
 * clip range c, within what one honest client can move it.
 */
export function defineSecureRound(pb: PlanBuilder, r: SecureRound): void {
  const { clipRange: c, bitwidth } = r.fixedPoint;
  const h = zeroLevel(bitwidth);
  const V1 = secureUpdateType(r.M, r.dp);

  pb.computation('work', workParam(r.batch, r.C), (b, p) => {
    const t = r.train(b, p);
    const change = b.tree.zip([t.start, t.trained], ([w0, w1]) => b.sub(w0!, w1!));
    const norm = b.sqrt(b.tree.sumOfSquares(change), 'change_norm');
    const shrink = b.minimum(b.div(b.scalar(r.maxNorm), b.maximum(norm, 1e-12)), 1, 'norm_clip');
    const v1 = b.struct(
      {
        delta: b.tree.map(change, (x) => encodeCoordinate(b, b.mul(x, shrink), c, h)),
        ...(r.dp ? {} : { loss: encodeLoss(b, t.meanLoss, bitwidth) }),
        clients: b.scalar(1, 'int32', 'one_client'),
      },
      'secure_update',
    );
    return workResult(b, b.struct([], 'no_plain_update'), { v1 });
  });

  pb.computation('zero', undefined, (b) => b.struct([]));
  pb.computation('accumulate', named({ accumulator: EMPTY, update: EMPTY }), (b, p) =>
    b.field(p, 'accumulator'),
  );
  pb.computation('merge', named({ a: EMPTY, b: EMPTY }), (b, p) => b.field(p, 'a'));
  pb.computation('report', EMPTY, (_b, a) => a);
  defineSecureParams(pb, {
    bitwidth: r.dp
      ? { delta: paramTree(r.M, bitwidth), clients: 1 }
      : { delta: paramTree(r.M, bitwidth), loss: bitwidth, clients: 1 },
  });

  pb.computation('update', updateParam(r.S, EMPTY, [V1, EMPTY, EMPTY]), (b, p) => {
    const sums = b.get(p, 'aggregates.bitwidth_sum');
    const n = b.field(sums, 'clients');
    const count = b.maximum(b.cast(n, 'float32'), 1, 'count');
    // sum - n h is exact in int32 (it lies in [-n h, n (h + 1)], within n (2^bitwidth - 1) < 2^31 by
    // checkSecureFedAvg), so the offset cancels
    // before anything is rounded to float32.
    const offset = b.mul(n, h, 'zero_offset');
    const delta = b.tree.map(b.field(sums, 'delta'), (q) =>
      b.div(b.mul(b.cast(b.sub(q, offset), 'float32'), c / h), count),
    );
    const state = nextServerState(b, r.opt, b.field(p, 'state'), delta);
    if (r.dp) return b.struct([state, b.struct({ clients: n }, 'output')]);
    const lossStep = SECURE_LOSS_RANGE / (2 ** bitwidth - 1);
    const loss = b.div(b.mul(b.cast(b.field(sums, 'loss'), 'float32'), lossStep), count, 'train_loss');
    return b.struct([state, b.struct({ train_loss: loss, clients: n }, 'output')]);
  });
}

/**
 * One coordinate in fixed point: clipped to [-c, c] and rounded to the nearest of 2h + 1 levels. Rounding
 * is to nearest, not stochastic: the IR's only random op, random_normal, is server-only (a plan cannot make
 * clients draw noise the server predicts), so a client has no randomness of its own to round with. The
 * error is at most half a step, c / 2h, per client and coordinate (3e-5 at the defaults c = 1, 16 bits).
 */
function encodeCoordinate(b: ComputationBuilder, x: Handle, c: number, h: number): Handle {
  const scaled = b.mul(b.clip(x, -c, c), h / c);
  return b.cast(b.add(b.op('round', [scaled]), h), 'int32');
}

/** The mean loss clipped to [0, SECURE_LOSS_RANGE] on a grid of 2^bitwidth levels. */
function encodeLoss(b: ComputationBuilder, loss: Handle, bitwidth: number): Handle {
  const scaled = b.mul(b.clip(loss, 0, SECURE_LOSS_RANGE), (2 ** bitwidth - 1) / SECURE_LOSS_RANGE);
  return b.cast(b.op('round', [scaled], {}, 'loss_level'), 'int32', 'loss');
}

/** A struct type with the same fields as `t` and int32 tensors of the same shapes. */
function int32Like(t: StructType): StructType {
  return named(
    Object.fromEntries(
      t.fields.map((f) => {
        if (f.type.kind !== 'tensor') throw new Error(`model field ${f.name} is not a tensor`);
        return [f.name!, i32(f.type.shape)];
      }),
    ),
  );
}

/** One secure-sum parameter per tensor of a flat struct type. */
function paramTree(t: StructType, value: number): SecureParam {
  return Object.fromEntries(t.fields.map((f) => [f.name!, value]));
}
