import type { Page } from 'playwright-core';
import { MemoryExampleStore } from '../src/client/example-store';
import { RoundhouseClient } from '../src/client';
import type { RunOutcome } from '../src/client/types';
import type { JsonValue } from '../src/compute/value-json';
import type { ClientExamples } from '../src/data';
import {
  digitsClientExamples,
  loadDigits,
  partitionNonIid,
  subsetDigits,
  trainTestSplit,
} from '../src/data/digits';
import { buildTrainThenEvaluate } from '../src/stateful/library/train-then-evaluate';
import type { Program } from '../src/stateful/program';
import { runProgram } from '../src/stateful/reference';
import { readings, secureCountProgram } from './support/stateful-programs';
import type { ProgramSummary } from '../src/stateful/server/program-store';
import { openBrowserCluster, type BrowserCluster, type PageWindow } from './support/chromium';
import { eventually, type Cluster } from './support/cluster';
import { needs } from './support/needs';

// A stateful program with a browser tab in its cohort: the tab runs the bundled SDK
// (dist/web/roundhouse-client.js, loaded by the demo page from /sdk/) on TensorFlow.js's WASM backend, and
// three Node SDK clients in this process run beside it. The cohort's target and minimum are all four devices,
// so the program can only start, and each aggregation can only be released, with the tab's contributions in
// it. The server's outputs (an API process and a worker process, real Redis, real HTTP) must equal those of
// the in-process reference run over the same four devices' data, as test/program-server.test.ts checks for
// Node devices alone.

/** Node clients beside the tab. */
const NODE_CLIENTS = 3;
const DEVICES = NODE_CLIENTS + 1;

// The devices' data as in test/program-server.test.ts: every fifth training example, McMahan non-IID shards
// of it for training and of the held-out split for evaluation. Device 0 is the tab.
const { train, test: heldOut } = trainTestSplit(loadDigits(), 0.2, 7);
const small = subsetDigits(
  train,
  Array.from({ length: Math.floor(train.n / 5) }, (_, i) => i * 5),
);
const trainParts = partitionNonIid(small.y, DEVICES, 2, 7).map((ix) => digitsClientExamples(small, ix));
const testParts = partitionNonIid(heldOut.y, DEVICES, 2, 8).map((ix) => digitsClientExamples(heldOut, ix));

/**
 * A small train-then-evaluate: two rounds of FedAvg, then evaluation on the same cohort. Every device is
 * both the target and the minimum, so the tab must take part in every step.
 */
const program: Program = buildTrainThenEvaluate({
  layers: [64, 8, 10],
  clientLr: 0.3,
  epochs: 2,
  batchSize: 8,
  seed: 3,
  testBatchSize: 16,
  rounds: 2,
  targetClients: DEVICES,
  minClients: DEVICES,
  joinTimeoutS: 60,
  stepTimeoutS: 60,
});
const TRAIN = program.client_data['train']!.collection;
const TEST = program.client_data['test']!.collection;
/** Each device's examples by collection, keyed by the id it uses with the server. */
const devices = new Map<string, Record<string, ClientExamples>>(
  trainParts.map((part, i) => [
    i === 0 ? 'browser-tab' : `node-${i}`,
    { [TRAIN]: part, [TEST]: testParts[i]! },
  ]),
);
/** Contributions every device makes: one per aggregate step (each round's update, then the evaluation). */
const AGGREGATIONS = program.steps.filter((s) => s.op === 'aggregate').length;

/** Digits examples as plain arrays (what page.evaluate can carry): one row of 64 pixels per example. */
interface PlainDigits {
  readonly x: number[][];
  readonly y: number[];
}

function plain(examples: ClientExamples): PlainDigits {
  const [x, y] = examples.leaves as [Float32Array, Int32Array];
  const width = x.length / examples.count;
  return {
    x: Array.from({ length: examples.count }, (_, i) => Array.from(x.subarray(i * width, (i + 1) * width))),
    y: Array.from(y),
  };
}

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

// A missing browser is a missing dependency, not a reason to pass (test/support/needs.ts).
needs('chromium')('a stateful program with a browser tab in its cohort', () => {
  let cluster: Cluster;
  let page: Page;
  /** What the page printed and threw, shown when an assertion fails. */
  const pageOutput: string[] = [];

  let env: BrowserCluster | undefined;
  beforeAll(async () => {
    env = await openBrowserCluster(pageOutput);
    ({ cluster, page } = env);
  }, 60_000);
  afterAll(() => env?.close());

  test('a tab and three Node clients run train-then-evaluate to its end: the reference outputs (1e-5)', async () => {
    const started = Date.now();
    const created = await cluster.operator('/v1/programs', { method: 'POST', body: JSON.stringify(program) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };

    // The demo page is on the server's own origin (its PUBLIC_URL), so the session's URLs pass its CSP.
    // Its CSP has no 'unsafe-eval': a bundle that compiles code while loading (ajv did, through the session
    // runner's imports) throws there and leaves no `Roundhouse`, which this says before anything else.
    await page.goto(`${cluster.url}/demo/`);
    expect(pageOutput.filter((l) => l.startsWith('page error'))).toEqual([]);
    const surface = await page.evaluate(() => {
      const R = (window as unknown as PageWindow).Roundhouse;
      return [typeof R.RoundhouseClient, typeof R.SessionRunner, typeof R.runSession];
    });
    expect(surface).toEqual(['function', 'function', 'function']);

    const [tabId, tabData] = [...devices].find(([deviceId]) => deviceId.startsWith('browser'))!;
    const inTab = page.evaluate(
      async ({ population, deviceId, collections }) => {
        const R = (window as unknown as PageWindow).Roundhouse;
        const backend = await R.initBrowserBackend();
        const store = new R.PageExampleStore();
        for (const [collection, d] of Object.entries(collections)) {
          store.set(
            collection,
            R.examplesFromArrays([
              { dtype: 'float32', rows: d.x },
              { dtype: 'int32', rows: d.y },
            ]),
          );
        }
        const client = new R.RoundhouseClient({ server: location.origin, population, deviceId, store });
        const outcome = await client.runOnce();
        return { backend, outcome };
      },
      {
        population: program.population,
        deviceId: tabId,
        collections: Object.fromEntries(Object.entries(tabData).map(([c, e]) => [c, plain(e)])),
      },
    );
    const inNode = Promise.all(
      [...devices]
        .filter(([deviceId]) => deviceId !== tabId)
        .map(([deviceId, examples]) =>
          new RoundhouseClient({
            server: cluster.url,
            population: program.population,
            deviceId,
            store: new MemoryExampleStore(examples),
          }).runOnce(),
        ),
    );
    const [tab, nodes] = await Promise.all([
      inTab.catch((e: Error) => {
        throw new Error(`the tab failed: ${e.message}\n--- console\n${pageOutput.join('\n')}`);
      }),
      inNode,
    ]);

    // The tab ran on WASM (what the comparison's bound assumes), and its session went to the end with one
    // uploaded contribution per aggregation, as did every Node client's.
    expect(tab.backend).toBe('wasm');
    const sessionOf = (o: RunOutcome, who: string) => {
      if (o.kind !== 'session') throw new Error(`${who} got ${JSON.stringify(o)}, not a session`);
      return o.session;
    };
    for (const [who, o] of [
      ['the tab', tab.outcome] as const,
      ...nodes.map((n, i) => [`node ${i}`, n] as const),
    ]) {
      expect({ who, ...sessionOf(o, who) }).toMatchObject({
        who,
        status: 'completed',
        endedBy: 'server',
        programId: id,
        contributions: AGGREGATIONS,
      });
    }

    const server = await eventually(`program ${id} to end`, async () => {
      const p = (await (await cluster.operator(`/v1/programs/${id}`)).json()) as ProgramSummary;
      return p.status === 'completed' || p.status === 'failed' ? p : undefined;
    });
    expect(server.error).toBeUndefined();
    expect(server.status).toBe('completed');
    expect(server.cohort).toBe(DEVICES);
    // Every aggregation counted all four devices: the last round's training report and the evaluation.
    const outputs = server.outputs as {
      metrics: { clients: number; examples: number };
      train: { clients: number; examples: number };
    };
    expect(outputs.metrics.clients).toBe(DEVICES);
    expect(outputs.train.clients).toBe(DEVICES);
    const count = (collection: string) => [...devices.values()].reduce((n, d) => n + d[collection]!.count, 0);
    expect(outputs.metrics.examples).toBe(count(TEST));

    const reference = await runProgram(program, devices);
    expect(reference.failed).toBeUndefined();
    const worst = worstDifference(server.outputs as JsonValue, reference.outputs as JsonValue);
    console.log(
      `train-then-evaluate with a browser tab (${tab.backend}) and ${NODE_CLIENTS} Node clients: ` +
        `worst difference from the reference ${worst.toExponential(2)}, ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s from submission to the reference's end`,
    );
    expect(worst).toBeLessThan(1e-5);
    expect(pageOutput.filter((l) => l.startsWith('page error'))).toEqual([]);
  }, 120_000);

  test('a tab and two Node clients run a secure sum under SecAgg+: the tab masks its value, the sum is exact', async () => {
    // The secure-count program: target and minimum 3, so the tab is in the SecAgg cohort of the sum.
    const secure: Program = { ...secureCountProgram(3, 3), population: 'browser-secure' };
    const created = await cluster.operator('/v1/programs', { method: 'POST', body: JSON.stringify(secure) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    await page.goto(`${cluster.url}/demo/`);
    const data = new Map([
      ['browser-secure-tab', readings(0.5, 3, 7, 9)],
      ['node-secure-1', readings(1, 2, 3)],
      ['node-secure-2', readings(4, 5)],
    ]);
    const inTab = page.evaluate(
      async ({ population, values }) => {
        const R = (window as unknown as PageWindow).Roundhouse;
        await R.initBrowserBackend();
        const store = new R.PageExampleStore();
        store.set('readings', R.examplesFromArrays([{ dtype: 'float32', rows: values }]));
        const client = new R.RoundhouseClient({
          server: location.origin,
          population,
          deviceId: 'browser-secure-tab',
          store,
        });
        return client.runOnce();
      },
      { population: secure.population, values: [0.5, 3, 7, 9] },
    );
    const inNode = [...data]
      .filter(([d]) => d.startsWith('node'))
      .map(([deviceId, examples]) =>
        new RoundhouseClient({
          server: cluster.url,
          population: secure.population,
          deviceId,
          store: new MemoryExampleStore(examples),
        }).runOnce(),
      );
    const outcomes = await Promise.all([
      inTab.catch((e: Error) => {
        throw new Error(`the tab failed: ${e.message}\n--- console\n${pageOutput.join('\n')}`);
      }),
      ...inNode,
    ]);
    for (const o of outcomes) {
      expect(o).toMatchObject({ kind: 'session', session: { status: 'completed', contributions: 2 } });
    }
    const server = await eventually(`program ${id} to end`, async () => {
      const p = (await (await cluster.operator(`/v1/programs/${id}`)).json()) as ProgramSummary & {
        aggregations: string[];
      };
      return p.status === 'completed' || p.status === 'failed' ? p : undefined;
    });
    expect([server.status, server.error]).toEqual(['completed', undefined]);
    const reference = await runProgram(secure, data);
    expect(server.outputs).toEqual(reference.outputs as JsonValue);
    expect((server.outputs as { total: unknown }).total).toEqual({ n: 9, high: 6 });
    // The sum's round ran SecAgg+ with all three, the tab included: it advertised, shared and unmasked.
    const rounds = (await (await cluster.operator(`/v1/plans/${server.aggregations[0]}/rounds`)).json()) as {
      rounds: { secure_aggregation?: unknown }[];
    };
    expect(rounds.rounds[0]?.secure_aggregation).toEqual({
      protocol: 'secagg+',
      advertised: 3,
      shared: 3,
      unmasked: 3,
    });
    expect(pageOutput.filter((l) => l.startsWith('page error'))).toEqual([]);
  }, 120_000);
});
