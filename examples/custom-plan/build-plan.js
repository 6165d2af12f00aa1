// A custom plan written with `roundhouse/builder`: the clipped mean, minimum and maximum of every client's
// float32 readings (federated analytics). Each reading is clipped to [LOW, HIGH] on the client, so that no
// single reading moves the statistics by more than the range allows. It writes the plan JSON and a small
// synthetic clients CSV (`roundhouse/data`) that `roundhouse run-local` can run it over:
//   node build-plan.js clipped-stats.json clients.csv
//   npx roundhouse validate clipped-stats.json
//   npx roundhouse run-local clipped-stats.json --data clients.csv
const fs = require('node:fs');
const {
  PlanBuilder,
  defineSecureParams,
  EMPTY,
  f32,
  i32,
  named,
  updateParam,
  workParam,
  workResult,
} = require('roundhouse/builder');
const { writeClientsCsv } = require('roundhouse/data');

const LOW = 0;
const HIGH = 100;

/** The plan: S = C = <>, U = <sum, count, min, max>, A = U + clients, R = X = <mean, min, max, count, clients>. */
function buildClippedStats() {
  const element = f32([null]); // a batch of readings, one float32 per example
  const U = named({ sum: f32(), count: i32(), min: f32(), max: f32() });
  const A = named({ sum: f32(), count: i32(), min: f32(), max: f32(), clients: i32() });
  const pb = new PlanBuilder();

  // One batch into the client's running statistics.
  const addBatch = pb.fn('add_batch', named({ acc: U, batch: element }), (b, p) => {
    const x = b.clip(b.field(p, 'batch'), LOW, HIGH, 'clipped');
    return b.struct({
      sum: b.add(b.get(p, 'acc.sum'), b.reduceSum(x)),
      count: b.add(b.get(p, 'acc.count'), b.dim(x, 0)),
      min: b.minimum(b.get(p, 'acc.min'), b.reduceMin(x)),
      max: b.maximum(b.get(p, 'acc.max'), b.reduceMax(x)),
    });
  });
  // The empty statistics: min starts at HIGH and max at LOW, so that any clipped reading replaces them.
  const empty = (b, withClients) =>
    b.struct({
      sum: b.scalar(0, 'float32'),
      count: b.scalar(0, 'int32'),
      min: b.scalar(HIGH, 'float32'),
      max: b.scalar(LOW, 'float32'),
      ...(withClients ? { clients: b.scalar(0, 'int32') } : {}),
    });
  const combine = (b, a, u, clients) =>
    b.struct({
      sum: b.add(b.field(a, 'sum'), b.field(u, 'sum')),
      count: b.add(b.field(a, 'count'), b.field(u, 'count')),
      min: b.minimum(b.field(a, 'min'), b.field(u, 'min')),
      max: b.maximum(b.field(a, 'max'), b.field(u, 'max')),
      clients,
    });

  pb.computation('initialize', undefined, (b) => b.struct([]));
  pb.computation('prepare', EMPTY, (_b, s) => s);
  pb.computation('work', workParam(element, EMPTY), (b, p) =>
    workResult(b, b.fold(b.field(p, 'data'), empty(b, false), addBatch, {}, 'client_stats')),
  );
  pb.computation('zero', undefined, (b) => empty(b, true));
  pb.computation('accumulate', named({ accumulator: A, update: U }), (b, p) => {
    const a = b.field(p, 'accumulator');
    return combine(b, a, b.field(p, 'update'), b.add(b.field(a, 'clients'), 1));
  });
  pb.computation('merge', named({ a: A, b: A }), (b, p) => {
    const [x, y] = [b.field(p, 'a'), b.field(p, 'b')];
    return combine(b, x, y, b.add(b.field(x, 'clients'), b.field(y, 'clients')));
  });
  const R = named({ mean: f32(), min: f32(), max: f32(), count: i32(), clients: i32() });
  pb.computation('report', A, (b, a) =>
    b.struct({
      // An empty aggregate reports 0 rather than NaN; the server never releases one anyway.
      mean: b.div(b.field(a, 'sum'), b.maximum(b.cast(b.field(a, 'count'), 'float32'), 1), 'mean'),
      min: b.field(a, 'min'),
      max: b.field(a, 'max'),
      count: b.field(a, 'count'),
      clients: b.field(a, 'clients'),
    }),
  );
  defineSecureParams(pb); // no secure sums: V1 = V2 = V3 = <>
  pb.computation('update', updateParam(EMPTY, R), (b, p) =>
    b.struct([b.field(p, 'state'), b.get(p, 'aggregates.report')]),
  );

  // build() runs the server's own checkPlan and throws, naming the computation and node, if anything is off.
  return pb.build({
    name: 'clipped-stats',
    description: `Mean, min and max of sensor readings, each clipped to [${LOW}, ${HIGH}].`,
    client_data: { collection: 'readings', element, batch_size: 4 },
    schedule: { rounds: 2, target_clients: 4, over_selection: 1 },
  });
}

/** Six clients with five readings each, a few outside [LOW, HIGH]; deterministic, so runs can be compared. */
function sampleClients() {
  const clients = new Map();
  for (let c = 0; c < 6; c++) {
    const readings = Float32Array.from({ length: 5 }, (_, i) => ((c * 37 + i * 23) % 130) - 10);
    clients.set(`sensor-${c}`, { count: readings.length, leaves: [readings] });
  }
  return clients;
}

function main() {
  const [planFile = 'clipped-stats.json', dataFile = 'clients.csv'] = process.argv.slice(2);
  const plan = buildClippedStats();
  fs.writeFileSync(planFile, `${JSON.stringify(plan, null, 2)}\n`);
  fs.writeFileSync(dataFile, writeClientsCsv(sampleClients(), plan.client_data.element));
  console.log(`wrote ${planFile} (plan "${plan.name}") and ${dataFile}`);
}

main();
