import { MemoryExampleStore } from '../src/client/example-store';
import { RoundhouseClient } from '../src/client';
import { initBackend } from '../src/compute/backend';
import type { JsonValue } from '../src/compute/value-json';
import type { ClientExamples } from '../src/data';
import {
  digitsClientExamples,
  loadDigits,
  partitionNonIid,
  subsetDigits,
  trainTestSplit,
  type DigitsData,
} from '../src/data/digits';
import { buildPersonalised } from '../src/stateful/library/personalised';
import { buildTrainThenEvaluate } from '../src/stateful/library/train-then-evaluate';
import type { Program } from '../src/stateful/program';
import { runProgram } from '../src/stateful/reference';
import type { ProgramSummary } from '../src/stateful/server/program-store';
import { eventually, startCluster, type Cluster } from './support/cluster';

// Both library programs through the server (an API process and a worker process, real Redis, real HTTP),
// with SDK devices in sessions, against the in-process reference over the same devices (1e-5).
const DEVICES = 4;
const { train, test } = trainTestSplit(loadDigits(), 0.2, 7);
const small = subsetDigits(
  train,
  Array.from({ length: Math.floor(train.n / 5) }, (_, i) => i * 5),
);
const trainParts = partitionNonIid(small.y, DEVICES, 2, 7).map((ix) => digitsClientExamples(small, ix));
const testParts = partitionNonIid(test.y, DEVICES, 2, 8).map((ix) => digitsClientExamples(test, ix));
const ids = trainParts.map((_, i) => `device-${i}`);
const shared = new Map(ids.map((id, i) => [id, { digits: trainParts[i]!, 'digits-test': testParts[i]! }]));

// Non-IID devices judged on their own distribution (as src/stateful/library/personalised.test.ts): McMahan
// shards (each device mostly 2 labels), each device's examples split into its own train and test data.
const every = (d: DigitsData): number[] => Array.from({ length: d.n }, (_, i) => i);
const digits = loadDigits();
const own = new Map(
  partitionNonIid(digits.y, 6, 2, 11).map((ix, i) => {
    const s = trainTestSplit(subsetDigits(digits, ix), 0.25, 100 + i);
    return [
      `own-${i}`,
      {
        digits: digitsClientExamples(s.train, every(s.train)),
        'digits-test': digitsClientExamples(s.test, every(s.test)),
      },
    ];
  }),
);
const OPTIONS = {
  layers: [64, 16, 10],
  clientLr: 0.3,
  epochs: 2,
  batchSize: 8,
  seed: 3,
  testBatchSize: 16,
  targetClients: DEVICES,
  minClients: 2,
} as const;

/** Every number of a JSON value, depth first. */
function numbers(v: JsonValue): number[] {
  if (typeof v === 'number') return [v];
  if (typeof v === 'boolean') return [Number(v)];
  return (Array.isArray(v) ? v : Object.values(v)).flatMap(numbers);
}

function worstDifference(actual: JsonValue, expected: JsonValue): number {
  const [a, e] = [numbers(actual), numbers(expected)];
  expect(a).toHaveLength(e.length);
  return Math.max(...a.map((x, i) => Math.abs(x - e[i]!)));
}

describe('stateful programs through the server', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    await initBackend();
    cluster = await startCluster({ workers: 1 });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  async function submit(program: Program): Promise<string> {
    const res = await cluster.operator('/v1/programs', { method: 'POST', body: JSON.stringify(program) });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  }

  async function ended(id: string): Promise<ProgramSummary> {
    return eventually(
      `program ${id} to end`,
      async () => {
        const p = (await (await cluster.operator(`/v1/programs/${id}`)).json()) as ProgramSummary;
        return p.status === 'completed' || p.status === 'failed' ? p : undefined;
      },
      240_000,
    );
  }

  function device(examples: Record<string, ClientExamples>, population: string): RoundhouseClient {
    return new RoundhouseClient({
      server: cluster.url,
      population,
      deviceId: `device-${Math.random().toString(36).slice(2)}`,
      store: new MemoryExampleStore(examples),
    });
  }

  async function runThrough(
    program: Program,
    devices: ReadonlyMap<string, Record<string, ClientExamples>>,
  ): Promise<{ server: ProgramSummary; reference: JsonValue }> {
    const id = await submit(program);
    const outcomes = await Promise.all(
      [...devices.values()].map((d) => device(d, program.population).runOnce()),
    );
    for (const o of outcomes) {
      if (o.kind !== 'session' || o.session.status !== 'completed') console.log(JSON.stringify(o));
      expect(o.kind).toBe('session');
    }
    const server = await ended(id);
    const reference = await runProgram(program, devices);
    expect(reference.failed).toBeUndefined();
    return { server, reference: reference.outputs as JsonValue };
  }

  it('train-then-evaluate equals its reference (1e-5)', async () => {
    const program = buildTrainThenEvaluate({ ...OPTIONS, rounds: 2 });
    const { server, reference } = await runThrough(program, shared);
    expect(server.status).toBe('completed');
    expect(server.cohort).toBe(DEVICES);
    const worst = worstDifference(server.outputs as JsonValue, reference);
    console.log(
      `train-then-evaluate through the server: worst difference from the reference ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(1e-5);
    const metrics = (server.outputs as { metrics: { accuracy: number; clients: number } }).metrics;
    expect(metrics.clients).toBe(DEVICES);
  }, 300_000);

  it('personalised equals its reference (1e-5), and beats the global model on non-IID devices', async () => {
    const program = buildPersonalised({
      ...OPTIONS,
      batchSize: 16,
      rounds: 5,
      targetClients: own.size,
      minClients: own.size,
    });
    const { server, reference } = await runThrough(program, own);
    expect(server.status).toBe('completed');
    const worst = worstDifference(server.outputs as JsonValue, reference);
    const out = server.outputs as { global: { accuracy: number }; personalised: { accuracy: number } };
    console.log(
      `personalised through the server: personalised ${out.personalised.accuracy.toFixed(3)} vs global ${out.global.accuracy.toFixed(3)}; worst difference from the reference ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(1e-5);
    expect(out.personalised.accuracy).toBeGreaterThan(out.global.accuracy);
  }, 300_000);
});
