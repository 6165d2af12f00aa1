/**
 * `roundhouse simulate --data clients.csv`: each client_id of a clients CSV is one simulated device holding
 * its rows, for any plan. A federated sum over known values comes out exact on the server; a FedAvg on
 * generated 5-feature, 2-class data trains and is evaluated on a held-out CSV; data that does not fit the
 * plan is refused before anything is submitted; options that mean nothing with a CSV are usage errors.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import type { TffType } from '../src/compute/types';
import { writeClientsCsv, type ClientExamples } from '../src/data';
import type { Plan } from '../src/generated/plan';
import { PLAN_LIBRARY } from '../src/plans';
import type { RoundSummary } from '../src/simulate/simulator';
import type { PlanSummary } from '../src/store/types';
import { runCli, startCluster, type Cluster, type CliRun } from './support/cluster';

let cluster: Cluster;
let dir: string;

beforeAll(async () => {
  cluster = await startCluster({ workers: 1 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-simulate-data-'));
});
afterAll(async () => {
  await cluster?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** `roundhouse simulate` against the test's cluster; clients wait a tenth of every retry window. */
const simulate = (args: string[]): Promise<CliRun> =>
  runCli([
    'simulate',
    '--server',
    cluster.url,
    '--token',
    cluster.operatorToken,
    '--time-scale',
    '0.1',
    '--pause-after-task-s',
    '0',
    ...args,
  ]);

const plansOf = async (population: string): Promise<PlanSummary[]> =>
  ((await (await cluster.operator('/v1/plans')).json()) as { plans: PlanSummary[] }).plans.filter(
    (p) => p.population === population,
  );

/** Writes a plan and a clients CSV for its batch type into the test's directory. */
function files(
  name: string,
  plan: Plan,
  clients: ReadonlyMap<string, ClientExamples>,
  element: TffType = plan.client_data.element,
): { plan: string; data: string } {
  const planFile = path.join(dir, `${name}.json`);
  const dataFile = path.join(dir, `${name}.csv`);
  fs.writeFileSync(planFile, JSON.stringify(plan));
  fs.writeFileSync(dataFile, writeClientsCsv(clients, element));
  return { plan: planFile, data: dataFile };
}

/** The round summaries `simulate --json` printed, one JSON object a line. */
const roundsOf = (stdout: string): RoundSummary[] =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RoundSummary);

const ints = (...v: number[]): ClientExamples => ({ count: v.length, leaves: [Int32Array.from(v)] });

test('a federated sum over a CSV of three clients is exact on the server', async () => {
  const collection = 'csv-sum';
  const plan = PLAN_LIBRARY['federated-sum']!.build({
    collection,
    rounds: 2,
    targetClients: 3,
    overSelection: 1,
  }) as Plan;
  const f = files(
    'sum',
    plan,
    new Map([
      ['alice', ints(1, 2)],
      ['bob', ints(10)],
      ['carol', ints(5, 0, 100)],
    ]),
  );
  const { code, stdout, stderr } = await simulate(['--submit', f.plan, '--data', f.data, '--json']);
  expect(stderr).not.toMatch(/digits/);
  expect(code).toBe(0);
  const printed = roundsOf(stdout);
  expect(printed.map((r) => [r.round, r.status, r.output])).toEqual([
    [1, 'completed', { sum: 118 }],
    [2, 'completed', { sum: 118 }],
  ]);
  // Read back from the server: every round aggregated all three clients, exactly.
  const [submitted] = await plansOf(collection);
  expect(submitted).toMatchObject({ status: 'completed' });
  const { rounds } = (await (await cluster.operator(`/v1/plans/${submitted!.id}/rounds`)).json()) as {
    rounds: { phase: string; aggregated_clients: number; output: unknown }[];
  };
  expect(rounds.map((r) => [r.phase, r.aggregated_clients, r.output])).toEqual([
    ['completed', 3, { sum: 118 }],
    ['completed', 3, { sum: 118 }],
  ]);
}, 90_000);

/** Examples of 5 standard-normal features labelled by the sign of x0 + x1 - x2: learnable in a round or two. */
function tabular(n: number, random: () => number): ClientExamples {
  const x = new Float32Array(n * 5);
  const y = new Int32Array(n);
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 5; j++) x[i * 5 + j] = normal();
    y[i] = x[i * 5]! + x[i * 5 + 1]! - x[i * 5 + 2]! > 0 ? 1 : 0;
  }
  return { count: n, leaves: [x, y] };
}

const tabularPlan = (collection: string, layers: number[]): Plan =>
  PLAN_LIBRARY.fedavg!.build({
    collection,
    layers,
    rounds: 2,
    targetClients: 4,
    overSelection: 1,
    epochs: 2,
  }) as Plan;

test('a FedAvg on generated tabular data trains over two rounds and is evaluated on a held-out CSV', async () => {
  const collection = 'csv-tabular';
  const plan = tabularPlan(collection, [5, 8, 2]);
  const random = seedrandom('tabular');
  const clients = new Map(['p', 'q', 'r', 's', 't'].map((id) => [id, tabular(40, random)]));
  const f = files('tabular', plan, clients);
  const heldOut = path.join(dir, 'tabular-heldout.csv');
  fs.writeFileSync(
    heldOut,
    writeClientsCsv(new Map([['h', tabular(200, random)]]), plan.client_data.element, {
      withClientId: false,
    }),
  );
  const { code, stdout, stderr } = await simulate([
    '--submit',
    f.plan,
    '--data',
    f.data,
    '--eval-data',
    heldOut,
    '--json',
  ]);
  expect(stderr).not.toMatch(/digits|note:/);
  expect(code).toBe(0);
  const rounds = roundsOf(stdout);
  expect(rounds.map((r) => [r.round, r.status, r.participants])).toEqual([
    [1, 'completed', 4],
    [2, 'completed', 4],
  ]);
  // Evaluated on the 200 held-out rows: a real accuracy, better than chance after two rounds.
  const last = rounds[1]!;
  expect(last.evaluation).toMatchObject({ examples: 200 });
  expect(last.accuracy).toBeGreaterThan(0.6);
  expect((await plansOf(collection)).map((p) => p.status)).toEqual(['completed']);
}, 90_000);

test('a CSV that does not fit the plan is refused, naming file, row and column, and nothing is submitted', async () => {
  const collection = 'csv-refused';
  const random = seedrandom('refused');
  const plan = tabularPlan(collection, [5, 8, 2]);
  const clients = new Map(['a', 'b', 'c', 'd'].map((id) => [id, tabular(3, random)]));
  // Four features where the plan takes five: the header is one column short.
  const narrow = tabularPlan(collection, [4, 8, 2]).client_data.element;
  const four = new Map(
    [...clients].map(([id, e]) => [
      id,
      { count: e.count, leaves: [(e.leaves[0] as Float32Array).filter((_, i) => i % 5 !== 4), e.leaves[1]!] },
    ]),
  );
  const wide = files('narrow', plan, four, narrow);
  // Five features but a label 2 of a two-class plan (y declares range [0, 1]).
  const labels = new Map(clients);
  labels.set('d', { count: 1, leaves: [new Float32Array(5), Int32Array.from([2])] });
  const bad = files('label', plan, labels, tabularPlan(collection, [5, 8, 3]).client_data.element);
  // Fitting data, but three clients for a plan whose rounds need four reports.
  const few = files('few', plan, new Map([...clients].slice(0, 3)));

  const [width, label, count] = await Promise.all([
    simulate(['--submit', wide.plan, '--data', wide.data]),
    simulate(['--submit', bad.plan, '--data', bad.data]),
    simulate(['--submit', few.plan, '--data', few.data]),
  ]);
  expect(width.code).toBe(1);
  expect(width.stderr).toContain(`${wide.data}: row 1, column 6: header has "y", expected "x.4"`);
  expect(label.code).toBe(1);
  // The three rows each of a, b and c come first (rows 2 to 10 after the header), then d's one row.
  expect(label.stderr).toContain(
    `${bad.data}: row 11, column y: 2 is outside the declared range [0, 1] of y`,
  );
  expect(count.code).toBe(1);
  expect(count.stderr).toContain(`needs 4 clients to report a round`);
  expect(count.stderr).toContain(`${few.data} has 3: every round would fail`);
  expect(await plansOf(collection)).toEqual([]);
}, 60_000);

test('options that mean nothing with a CSV are usage errors (exit 2) naming the option', async () => {
  const f = files(
    'usage',
    tabularPlan('csv-usage', [5, 8, 2]),
    new Map([['a', tabular(2, seedrandom('usage'))]]),
  );
  const runs = await Promise.all([
    simulate(['--submit', f.plan, '--data', f.data, '--clients', '10']),
    simulate(['--submit', f.plan, '--data', f.data, '--shards-per-client', '3']),
    simulate(['--submit', f.plan, '--eval-data', f.data]),
    simulate(['--submit', f.plan, '--data', f.data, '--target-accuracy', '0.9']),
  ]);
  expect(runs.map((r) => r.code)).toEqual([2, 2, 2, 2]);
  expect(runs[0]!.stderr).toContain(
    "option '--data <clients.csv>' cannot be used with option '--clients <n>'",
  );
  expect(runs[1]!.stderr).toContain(
    "option '--data <clients.csv>' cannot be used with option '--shards-per-client <n>'",
  );
  expect(runs[2]!.stderr).toContain('--eval-data needs --data');
  expect(runs[3]!.stderr).toContain('--target-accuracy with --data needs --eval-data');
  expect(await plansOf('csv-usage')).toEqual([]);
}, 60_000);
