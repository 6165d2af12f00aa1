/**
 * Personalised federated learning (docs/stateful.md): each device keeps its own head (the model's last
 * layer) across rounds while the shared body is averaged, then scores both the global model and its
 * personalised one on its own test data. What a plan cannot do: its devices keep nothing between rounds.
 */
import type { ComputationBuilder, Handle } from '../../compute/builder';
import { sequenceType, type StructType } from '../../compute/types';
import { f32, named } from '../../plans/common';
import type { MlpShape } from '../../plans/fedavg-model';
import { plainUpdate } from '../../plans/fedavg-plain';
import { resolveOptions } from '../../plans/options';
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

/** Options of the personalised program: those of the library's FedAvg programs (FEDAVG_PROGRAM_OPTIONS). */
export type PersonalisedOptions = FedAvgProgramOptions;

/** The head's fields: the last layer's kernel and bias (`w<k>`, `b<k>`). */
function headFields({ layers }: MlpShape): readonly [string, string] {
  const k = layers.length - 2;
  return [`w${k}`, `b${k}`];
}

/** The head type `<w<k>=float32[hidden, classes], b<k>=float32[classes]>`. */
function headType(shape: MlpShape): StructType {
  const [w, bias] = headFields(shape);
  const [fanIn, fanOut] = shape.layers.slice(-2) as [number, number];
  return named({ [w]: f32([fanIn, fanOut]), [bias]: f32([fanOut]) });
}

/** A model's head. */
function headOf(b: ComputationBuilder, shape: MlpShape, model: Handle): Handle {
  const [w, bias] = headFields(shape);
  return b.struct({ [w]: b.field(model, w), [bias]: b.field(model, bias) }, 'head');
}

/** The model with the body of `model` and the head `head`. */
function withHead(b: ComputationBuilder, shape: MlpShape, model: Handle, head: Handle): Handle {
  const own = new Set(headFields(shape));
  const fields: Record<string, Handle> = {};
  for (const f of (model.type as StructType).fields) {
    fields[f.name!] = own.has(f.name!) ? b.field(head, f.name!) : b.field(model, f.name!);
  }
  return b.struct(fields, 'personal_model');
}

/**
 * FedAvg for `rounds` unrolled rounds in which each device trains from the global body and its own head and
 * keeps the trained head for the next round: the model is broadcast; on the first round a device's head is
 * the global head (`initial_head`); each round `local_train` trains the whole model from (global body, own
 * head) with the plan's local SGD on the device's `train` collection (read once, kept on the device), keeps
 * the trained head (the old one is disposed) and contributes the example-weighted change from the
 * broadcast model to the trained one, body and head: so the new global model is the example-weighted
 * average of the trained models (server SGD at learning rate 1), and the first round is exactly the FedAvg
 * plan's. After the last round the final global model is broadcast and each device scores, on its `test`
 * collection, the global model and its personalised model (`personalise`: the final global body with the
 * head it kept); both sums are aggregated. Only aggregates leave the devices: the heads never do.
 *
 * Outputs: `model` (the global `<model=M>`), `global` and `personalised` `<loss, accuracy, examples,
 * clients>` (accuracy = correct / examples over every device's test examples), and `train` (the last
 * round's loss, examples and clients). As with train-then-evaluate, no update bounds apply.
 */
export function buildPersonalised(options: Partial<PersonalisedOptions> = {}): Program {
  const o = resolveOptions(FEDAVG_PROGRAM_OPTIONS, options);
  const pb = new ProgramBuilder();
  const parts = defineFedAvgProgram(pb, o);
  const { shape, C } = parts;
  const H = headType(shape);

  pb.computation('initial_head', C, (b, c) => headOf(b, shape, b.field(c, 'model')));
  pb.computation('local_train', named({ data: sequenceType(parts.batch), broadcast: C, head: H }), (b, p) => {
    const global = b.get(p, 'broadcast.model');
    const start = withHead(b, shape, global, b.field(p, 'head'));
    const t = parts.train(b, b.struct({ data: b.field(p, 'data'), broadcast: b.struct({ model: start }) }));
    // The change from the broadcast model, not from the device's start: averaged, it makes the new global
    // head the mean of the trained heads, as the new body is the mean of the trained bodies.
    const update = plainUpdate(
      b,
      { ...t, start: global },
      { uniform: false, epochs: o.epochs, maxExamples: o.maxExamples },
    );
    return b.struct({ update, head: headOf(b, shape, t.trained) });
  });
  pb.computation('personalise', named({ broadcast: C, head: H }), (b, p) =>
    b.struct({ model: withHead(b, shape, b.get(p, 'broadcast.model'), b.field(p, 'head')) }),
  );

  // Step 0, whose index seeds random ops as round 0 seeds the plan's initialize: the same initial model.
  let model = pb.serverCall('initialize', [], { result: 'model_0' });
  const trainData = pb.clientData('train');
  let head = '';
  let report = '';
  for (let r = 1; r <= o.rounds; r++) {
    const modelC = pb.broadcast(model);
    if (r === 1) head = pb.clientCall('initial_head', [modelC], { result: 'head_0' });
    const trained = pb.clientCall('local_train', [trainData, modelC, head], { result: `trained_${r}` });
    const update = pb.clientSelect(trained, 'update', { result: `update_${r}` });
    const next = pb.clientSelect(trained, 'head', { result: `head_${r}` });
    report = aggregateUpdates(pb, update, o.minClients, `report_${r}`);
    pb.dispose([modelC, head, trained, update]);
    head = next;
    model = pb.serverCall('apply', [model, report], { result: `model_${r}` });
  }
  pb.dispose([trainData]);
  const trainMetrics = pb.serverCall('train_metrics', [report]);
  const finalC = pb.broadcast(model);
  const testData = pb.clientData('test');
  const global = aggregateMetrics(pb, testData, finalC, o.minClients, 'global');
  const personalC = pb.clientCall('personalise', [finalC, head], { result: 'personal_model' });
  const personalised = aggregateMetrics(pb, testData, personalC, o.minClients, 'personalised');
  pb.dispose([finalC, head, personalC, testData, global.scored, personalised.scored]);
  pb.output('model', model);
  pb.output('global', global.metrics);
  pb.output('personalised', personalised.metrics);
  pb.output('train', trainMetrics);

  return pb.build(
    fedAvgProgramMeta(
      o,
      parts,
      'personalised',
      `Personalised FedAvg of a ${o.layers.join('-')} MLP for ${o.rounds} rounds (${o.epochs} local epochs ` +
        `of SGD, lr ${o.clientLr}, batch ${o.batchSize}): each device keeps its own last layer across ` +
        `rounds while the model is averaged, then scores the global model and its personalised one on its ` +
        `${o.testCollection} data.`,
    ),
  );
}
