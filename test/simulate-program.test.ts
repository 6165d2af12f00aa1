/**
 * `roundhouse simulate --program` (run in-process): a stateful program run by simulated digits devices, SDK
 * clients over real HTTP, some of which die after their first contribution (seeded, so the same devices die
 * every run). The step timeout (10 s) is also each aggregation's deadline: long enough for six devices
 * training in this one process on a busy machine, short enough for the server to notice the dead soon.
 * Against a real server (API and worker processes, real Redis) the program completes with the
 * survivors; with a server in this process (`--in-process`) and too many deaths it fails with the server's
 * reason. Which devices die is the simulator's seeded draw; the tests check that the server saw what the
 * simulator reports, never a number written here for it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/compute/backend';
import { program as cli } from '../src/cli/main';
import { runInProcess } from '../src/cli/run-in-process.jest';
import type { JsonValue } from '../src/compute/value-json';
import { digitsProgramDevices } from '../src/simulate/program-population';
import type { ProgramSimulationResult } from '../src/simulate/program-simulator';
import { checkProgram } from '../src/stateful/check';
import { runProgram } from '../src/stateful/reference';
import { startCluster, type Cluster } from './support/cluster';

let cluster: Cluster;
let dir: string;

beforeAll(async () => {
  await initBackend();
  cluster = await startCluster({ workers: 1 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-simulate-program-'));
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Every number of a JSON value, depth first. */
function numbers(v: JsonValue): number[] {
  if (typeof v === 'number') return [v];
  if (typeof v === 'boolean') return [Number(v)];
  return (Array.isArray(v) ? v : Object.values(v)).flatMap(numbers);
}

/** A small train-then-evaluate built by `programs build` into a file: layers 64,8,10, two rounds. */
async function buildProgram(name: string, target: number, min: number): Promise<string> {
  const file = path.join(dir, name);
  const built = await runInProcess(cli, [
    'programs',
    'build',
    'train-then-evaluate',
    '--layers',
    '64,8,10',
    '--rounds',
    '2',
    '--epochs',
    '1',
    '--target-clients',
    String(target),
    '--min-clients',
    String(min),
    '-o',
    file,
  ]);
  expect(built.code).toBe(0);
  return file;
}

describe('roundhouse simulate --program', () => {
  it('train-then-evaluate with devices dying mid-program completes with the others', async () => {
    const file = await buildProgram('tte-6.json', 6, 3);
    const { out, err, code } = await runInProcess(cli, [
      'simulate',
      '--program',
      file,
      '--clients',
      '6',
      '--dropout',
      '0.3',
      '--seed',
      '2',
      '--step-timeout-s',
      '10',
      '--server',
      cluster.url,
      '--token',
      cluster.operatorToken,
      '--json',
    ]);
    const result = JSON.parse(out) as ProgramSimulationResult;
    console.log(
      `simulate --program: ${result.program.status} in ${(result.elapsedMs / 1000).toFixed(1)} s; ` +
        `${result.counts.completed} completed, ${result.counts.died} died; metrics ${JSON.stringify(
          (result.program.outputs as { metrics?: unknown } | undefined)?.metrics,
        )}`,
    );
    expect(code).toBe(0);
    const { counts, program } = result;
    // The premise: the seed kills at least one device, and leaves at least the minimum alive.
    expect(counts.died).toBeGreaterThanOrEqual(1);
    expect(counts.completed).toBeGreaterThanOrEqual(3);
    expect(counts.completed + counts.died).toBe(6);
    expect(err.match(/died after its first contribution/g)).toHaveLength(counts.died);
    expect(program.status).toBe('completed');
    expect(program.cohort).toBe(6);
    // The server timed every dead device's session out and kept the others to the end.
    expect(program.sessions.failed).toBe(counts.died);
    // A dead device contributed once (round 1) and nothing after; a survivor contributed to every aggregation.
    for (const d of result.devices) expect(d.contributions).toBe(d.fate === 'died' ? 1 : 3);
    const outputs = program.outputs as {
      metrics: { accuracy: number; examples: number; clients: number };
      train: { clients: number };
    };
    // Round 2 and the evaluation aggregated the survivors only.
    expect(outputs.train.clients).toBe(counts.completed);
    expect(outputs.metrics.clients).toBe(counts.completed);

    // The reference runner over the same devices' data, the dead ones losing their state after the first
    // aggregation (they contributed to it, then the next request naming their data fails them): the same
    // outputs, to float rounding (the server folds the contributions in another order).
    const { program: doc } = checkProgram(JSON.parse(fs.readFileSync(file, 'utf8')));
    const data = digitsProgramDevices(doc, { clients: 6, shardsPerClient: 2, seed: 2 });
    const firstAggregate = doc.steps.findIndex((s) => s.op === 'aggregate');
    const dead = result.devices.flatMap((d) =>
      d.fate === 'died' ? [[d.device, firstAggregate] as const] : [],
    );
    const reference = await runProgram(doc, new Map(result.devices.map((d, i) => [d.device, data[i]!])), {
      loseStateAfterStep: new Map(dead),
    });
    expect(reference.failed).toBeUndefined();
    const [actual, expected] = [
      numbers(program.outputs as JsonValue),
      numbers(reference.outputs as JsonValue),
    ];
    expect(actual).toHaveLength(expected.length);
    const worst = Math.max(...actual.map((x, i) => Math.abs(x - expected[i]!)));
    console.log(`simulate --program: worst difference from the reference ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-5);
  }, 90_000);

  it('a run where too many devices die fails with the server reason (server in this process)', async () => {
    const file = await buildProgram('tte-4.json', 4, 3);
    const { out, err, code } = await runInProcess(cli, [
      'simulate',
      '--program',
      file,
      '--clients',
      '4',
      '--dropout',
      '0.6',
      '--seed',
      '0',
      '--step-timeout-s',
      '10',
      '--in-process',
    ]);
    console.log(`simulate --program, too many deaths:\n${out}${err}`);
    expect(code).toBe(1);
    const died = Number(/(\d+) died mid-program/.exec(out)?.[1]);
    // The premise: more die than the minimum of 3 allows.
    expect(died).toBeGreaterThan(1);
    expect(out).toMatch(/^program \S+ \(train-then-evaluate\): failed at step \d+\/\d+ after [\d.]+ s$/m);
    const reason = new RegExp(
      `${4 - died} devices are live, fewer than the min_clients \\(3\\) of step \\d+`,
    );
    expect(out).toMatch(new RegExp(`^reason: ${reason.source}`, 'm'));
    expect(out).not.toContain('outputs:');
    expect(err).toMatch(new RegExp(`program \\S+ failed: ${reason.source}`));
  }, 90_000);
});
