import type { Body, ComputationBuilder, Handle, NullaryBody, PlanBuilder } from '../compute/builder';
import type { StructType, TffType } from '../compute/types';
import type { UpdateBounds } from '../generated/plan';
import { defineSecureParams, f32, i32, named, updateParam, workParam, workResult } from './common';
import { nextServerState, type LocalTraining, type RoundParts } from './fedavg-model';

/** What definePlainRound needs from the FedAvg plan. */
export interface PlainRound extends RoundParts {
  readonly uniform: boolean;
  readonly maxExamples: number;
  readonly epochs: number;
}

/** A computation's parameter type and body, for whichever builder registers it (plan or program). */
export interface ComputationDef {
  readonly parameter: TffType;
  readonly body: Body;
}

/**
 * The aggregation of FedAvg's plain round, as the MapReduce form's zero, accumulate, merge and report: the
 * clients' weighted model changes summed and averaged by the summed weight (examples, or clients when
 * uniform). U = <delta=M, examples, loss_sum>, A = <delta=M, examples, loss_sum, clients>, R = <delta=M,
 * examples, loss, clients>. Shared by the plan and the stateful train-then-evaluate program.
 */
export function plainAggregation(
  M: TffType,
  uniform: boolean,
): {
  readonly U: StructType;
  readonly R: StructType;
  readonly zero: NullaryBody;
  readonly accumulate: ComputationDef;
  readonly merge: ComputationDef;
  readonly report: ComputationDef;
} {
  const U = named({ delta: M, examples: i32(), loss_sum: f32() });
  const A = named({ delta: M, examples: i32(), loss_sum: f32(), clients: i32() });
  const R = named({ delta: M, examples: i32(), loss: f32(), clients: i32() });
  return {
    U,
    R,
    zero: (b) => b.tree.zeros(A),
    accumulate: {
      parameter: named({ accumulator: A, update: U }),
      body: (b, p) => {
        const acc = b.field(p, 'accumulator');
        const u = b.field(p, 'update');
        return b.struct({
          delta: b.tree.add(b.field(acc, 'delta'), b.field(u, 'delta')),
          examples: b.add(b.field(acc, 'examples'), b.field(u, 'examples')),
          loss_sum: b.add(b.field(acc, 'loss_sum'), b.field(u, 'loss_sum')),
          clients: b.add(b.field(acc, 'clients'), 1),
        });
      },
    },
    merge: { parameter: named({ a: A, b: A }), body: (b, p) => b.tree.add(b.field(p, 'a'), b.field(p, 'b')) },
    report: {
      parameter: A,
      body: (b, a) => {
        // The total weight: examples, or clients when uniform. An aggregate without any averages to zero
        // rather than NaN; it is never released anyway.
        const total = b.cast(b.field(a, uniform ? 'clients' : 'examples'), 'float32');
        const n = b.maximum(total, 1, 'total_weight');
        return b.struct({
          delta: b.tree.div(b.field(a, 'delta'), n),
          examples: b.field(a, 'examples'),
          loss: b.div(b.field(a, 'loss_sum'), n, 'train_loss'),
          clients: b.field(a, 'clients'),
        });
      },
    },
  };
}

/**
 * A client's plain update U from its local training: the model change (start minus trained weights) and
 * mean loss times its weight, its example count (every epoch visits every example once, so seen / epochs,
 * at most maxExamples, the bound the server enforces on every upload's claim) or 1 when uniform.
 */
export function plainUpdate(
  b: ComputationBuilder,
  t: LocalTraining,
  o: { readonly uniform: boolean; readonly epochs: number; readonly maxExamples: number },
): Handle {
  const examples = b.minimum(b.floorDiv(t.seen, o.epochs), o.maxExamples, 'examples');
  const weight = o.uniform ? b.scalar(1, 'float32', 'weight') : b.cast(examples, 'float32', 'weight');
  const delta = b.tree.zip([t.start, t.trained], ([w0, w1]) => b.mul(b.sub(w0!, w1!), weight));
  return b.struct({ delta, examples, loss_sum: b.mul(t.meanLoss, weight, 'weighted_loss') }, 'update');
}

/**
 * The plain round of FedAvg: `work` through `update` with the client's weighted model change in U
 * (plainUpdate), averaged by the accumulated weight in `report` (plainAggregation). X = <train_loss,
 * examples, clients>.
 */
export function definePlainRound(pb: PlanBuilder, r: PlainRound): void {
  const fold = plainAggregation(r.M, r.uniform);
  pb.computation('work', workParam(r.batch, r.C), (b, p) => workResult(b, plainUpdate(b, r.train(b, p), r)));
  pb.computation('zero', undefined, fold.zero);
  pb.computation('accumulate', fold.accumulate.parameter, fold.accumulate.body);
  pb.computation('merge', fold.merge.parameter, fold.merge.body);
  pb.computation('report', fold.report.parameter, fold.report.body);
  defineSecureParams(pb);

  pb.computation('update', updateParam(r.S, fold.R), (b, p) => {
    const report = b.get(p, 'aggregates.report');
    const state = nextServerState(b, r.opt, b.field(p, 'state'), b.field(report, 'delta'));
    const output = b.struct(
      {
        train_loss: b.field(report, 'loss'),
        examples: b.field(report, 'examples'),
        clients: b.field(report, 'clients'),
      },
      'output',
    );
    return b.struct([state, output]);
  });
}

/** The options FedAvg's update bounds come from (see FedAvgOptions). */
export interface BoundOptions {
  readonly weighting: 'examples' | 'uniform' | undefined;
  readonly maxExamples: number;
  readonly maxNorm: number;
  readonly boundMode: 'clip' | 'reject';
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
export function fedAvgBounds(o: BoundOptions): UpdateBounds {
  const maxWeight = o.weighting === 'uniform' ? 1 : o.maxExamples;
  return {
    ranges: [
      { path: 'examples', min: 0, max: o.maxExamples, mode: 'clip' },
      { path: 'loss_sum', min: 0, max: MAX_MEAN_LOSS * maxWeight, mode: 'clip' },
    ],
    norms: [{ paths: ['delta'], max_norm: o.maxNorm * maxWeight, mode: o.boundMode }],
  };
}
