/**
 * The standard-library Python client (examples/python-client/) against the reference: its unit tests, its
 * `work` command byte for byte (floats within 1e-6) against the SDK's `runWork` on the library plans, its
 * refusals, and whole rounds with three `run` processes against a live server (API and aggregation worker
 * in this process, real HTTP, real Redis on a unique prefix).
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { runWork } from '../src/client/work';
import { bundleLeaves, readBundle, writeBundle, type BundleTensor } from '../src/codec';
import type { TffType } from '../src/compute/types';
import { loadConfig } from '../src/config';
import { writeClientsCsv, type ClientExamples } from '../src/data';
import type { Plan } from '../src/generated/plan';
import { checkPlan } from '../src/plan/validate';
import { PLAN_LIBRARY } from '../src/plans';
import { loadPlan, type ClientPlan } from '../src/rounds/plan-cache';
import { startInProcessServer, type InProcessServer } from '../src/simulate/in-process-server';
import type { RoundInfo } from '../src/store/types';
import { eventually } from './support/cluster';
import { runInProcess } from '../src/cli/run-in-process.jest';
import { program } from '../src/cli/main';
import { readManifest } from '../src/conformance/kit';
import { shellQuote } from '../src/conformance/runner';
import { sumProgram } from './support/stateful-programs';
import { testRedisUrl } from './support/test-redis';

const CLIENT_DIR = path.join(__dirname, '..', 'examples', 'python-client');
const CLIENT = path.join(CLIENT_DIR, 'client.py');
const run = promisify(execFile);

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-python-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs the Python client; never throws, so that a test can look at a refusal's exit code and stderr. */
async function python(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('python3', [CLIENT, ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof err.code === 'number' ? err.code : -1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
    };
  }
}

/** The client plan document as the server serves it (`loadPlan`, src/rounds/plan-cache.ts). */
function clientPlanOf(plan: Plan): ClientPlan {
  return JSON.parse(loadPlan('p-python', checkPlan(plan)).clientPlan.json) as ClientPlan;
}

/** Deterministic numbers in [0, 1) (a 32-bit LCG), so that every run checks the same data. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A broadcast of `type` with every float set by `fill` (the library analytics plans broadcast `<>`). */
function broadcastOf(type: TffType, fill = (i: number) => i / 8): Uint8Array {
  return writeBundle(
    bundleLeaves(type).map(({ name, leaf }): BundleTensor => {
      const n = leaf.type.shape.reduce<number>((a, d) => a * (d ?? 1), 1);
      const shape = leaf.type.shape.map((d) => d ?? 1);
      const data =
        leaf.type.dtype === 'float32'
          ? Float32Array.from({ length: n }, (_, i) => fill(i))
          : leaf.type.dtype === 'int32'
            ? new Int32Array(n)
            : new Uint8Array(n);
      return { name, dtype: leaf.type.dtype, shape, data };
    }),
  );
}

/** Writes a client plan, broadcast and one device's examples (CSV without client_id) for the `work` command. */
function files(tag: string, doc: ClientPlan, broadcast: Uint8Array, examples: ClientExamples): string[] {
  const paths = ['plan.json', 'broadcast.safetensors', 'examples.csv', 'out.safetensors'].map((f) =>
    path.join(dir, `${tag}-${f}`),
  );
  fs.writeFileSync(paths[0]!, JSON.stringify(doc));
  fs.writeFileSync(paths[1]!, broadcast);
  const csv = writeClientsCsv(new Map([['device', examples]]), doc.client_data.element, {
    withClientId: false,
  });
  fs.writeFileSync(paths[2]!, csv);
  return paths;
}

/** Asserts two bundles hold the same tensors: names, dtypes and shapes equal, ints exact, floats to 1e-6. */
function expectSameBundle(actual: Uint8Array, expected: Uint8Array): void {
  const byName = (b: Uint8Array) => new Map(readBundle(b).tensors.map((t) => [t.name, t]));
  const a = byName(actual);
  const e = byName(expected);
  expect([...a.keys()].sort()).toEqual([...e.keys()].sort());
  for (const [name, want] of e) {
    const got = a.get(name)!;
    expect({ name, dtype: got.dtype, shape: got.shape }).toEqual({
      name,
      dtype: want.dtype,
      shape: want.shape,
    });
    if (want.dtype !== 'float32') {
      expect(Array.from(got.data)).toEqual(Array.from(want.data));
      continue;
    }
    want.data.forEach((w, i) => {
      expect(Math.abs(got.data[i]! - w)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(w)));
    });
  }
}

test('the Python unit tests pass (python3 -m unittest)', async () => {
  const { stderr } = await run('python3', ['-m', 'unittest', 'test_client'], {
    cwd: CLIENT_DIR,
    timeout: 60_000,
  });
  expect(stderr).toMatch(/^OK$/m);
});

// The kit's cases of the plans it implements: every op of federated-sum, histogram, mean and the temperature
// sensor (plain and secure-sum variants), and their refusals. FedAvg needs value_and_grad, which it lacks.
test('passes the conformance kit for federated-sum, histogram, mean and temperature-sensor', async () => {
  const cases = 'federated-sum,histogram,mean,temperature-sensor';
  const out = await runInProcess(program, [
    'conformance',
    '--client-cmd',
    `python3 ${shellQuote(CLIENT)} work`,
    '--case',
    cases,
    '--json',
  ]);
  const lines = out.out
    .trim()
    .split('\n')
    .map(
      (l) => JSON.parse(l) as { id?: string; status?: string; summary?: { failed: number; cases: number } },
    );
  expect(lines.slice(0, -1).filter((l) => l.status !== 'pass')).toEqual([]);
  const ids = readManifest(path.join(__dirname, '..', 'conformance'))
    .cases.map((c) => c.id)
    .filter((id) => cases.split(',').includes(id.split('/')[0]!));
  expect(lines.slice(0, -1).map((l) => l.id)).toEqual(ids);
  expect(ids.length).toBeGreaterThanOrEqual(15);
  expect(lines.at(-1)!.summary).toEqual({ cases: ids.length, passed: ids.length, failed: 0 });
  expect(out.code).toBe(0);
});

describe('work: the same upload as runWork', () => {
  // 29 examples in batches of 8: three full batches and a partial one of 5.
  const COUNT = 29;
  const cases: [string, Record<string, unknown>, (r: () => number) => ClientExamples][] = [
    ['federated-sum', {}, (r) => ints(r, -50, 50)],
    ['federated-sum', { secure: true }, (r) => ints(r, 0, 100)],
    ['histogram', {}, (r) => ints(r, -2, 12)],
    ['histogram', { secure: true }, (r) => ints(r, -2, 12)],
    [
      'mean',
      {},
      (r) => ({ count: COUNT, leaves: [Float32Array.from({ length: COUNT }, () => (r() - 0.3) * 200)] }),
    ],
  ];
  function ints(r: () => number, min: number, max: number): ClientExamples {
    return {
      count: COUNT,
      leaves: [Int32Array.from({ length: COUNT }, () => min + Math.floor(r() * (max - min)))],
    };
  }

  test.each(cases)('%s %j', async (name, options, data) => {
    const doc = clientPlanOf(PLAN_LIBRARY[name]!.build({ batchSize: 8, ...options }));
    const examples = data(seeded(name.length * 31 + Object.keys(options).length));
    const broadcast = broadcastOf(doc.broadcast_type);
    const args = files(`${name}-${Object.keys(options).length}`, doc, broadcast, examples);
    const result = await python(['work', ...args]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expectSameBundle(fs.readFileSync(args[3]!), runWork(doc, broadcast, examples, 1));
  });

  test('an example outside a declared range is refused, as runWork refuses it', async () => {
    const plan = PLAN_LIBRARY.histogram!.build({ batchSize: 8 });
    plan.client_data.element = {
      ...plan.client_data.element,
      range: [0, 9],
    } as typeof plan.client_data.element;
    const doc = clientPlanOf(plan);
    const examples: ClientExamples = { count: 3, leaves: [Int32Array.from([1, 10, 2])] };
    expect(() => runWork(doc, writeBundle([]), examples, 1)).toThrow(/outside the declared range/);
    // The CSV writer checks ranges too, so the file is written by hand.
    const args = files('range', doc, writeBundle([]), { count: 0, leaves: [new Int32Array(0)] });
    fs.writeFileSync(args[2]!, 'value\n1\n10\n2\n');
    const result = await python(['work', ...args]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^DATA_INVALID: .*row 3, column value: 10 is outside the declared range \[0, 9\]/,
    );
    expect(fs.existsSync(args[3]!)).toBe(false);
  });

  test('a plan it cannot run fails by the op, and a NaN broadcast is refused before that', async () => {
    const doc = clientPlanOf(PLAN_LIBRARY.fedavg!.build({ batchSize: 8 }));
    const examples: ClientExamples = {
      count: 2,
      leaves: [new Float32Array(2 * 64).fill(0.5), Int32Array.from([3, 7])],
    };
    const unsupported = await python([
      'work',
      ...files('fedavg', doc, broadcastOf(doc.broadcast_type), examples),
    ]);
    expect(unsupported.code).toBe(1);
    expect(unsupported.stderr).toMatch(/^EVAL_ERROR: .*unsupported op value_and_grad/);

    const nan = broadcastOf(doc.broadcast_type, (i) => (i === 3 ? NaN : 0));
    expect(() => runWork(doc, nan, examples, 1)).toThrow(/non-finite/);
    const refused = await python(['work', ...files('fedavg-nan', doc, nan, examples)]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^BUNDLE_NOT_FINITE: .*element 3 is nan/);
  });

  test('an unknown client-plan format is refused', async () => {
    const doc = { ...clientPlanOf(PLAN_LIBRARY.mean!.build()), format: 'roundhouse.client-plan/v9' };
    const examples: ClientExamples = { count: 1, leaves: [Float32Array.from([1])] };
    const result = await python([
      'work',
      ...files('format', doc as unknown as ClientPlan, writeBundle([]), examples),
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/unknown client-plan format 'roundhouse.client-plan\/v9'/);
  });
});

describe('run: rounds against a live server', () => {
  let server: InProcessServer;
  const operator = (pathname: string, init: RequestInit = {}) =>
    fetch(`${server.url}${pathname}`, {
      ...init,
      headers: { authorization: `Bearer ${server.operatorToken}`, 'content-type': 'application/json' },
    });
  beforeAll(async () => {
    const base = loadConfig({ REDIS_URL: testRedisUrl() });
    // Short retry windows: a device that checks in before the round opens comes back within a second.
    server = await startInProcessServer(base, pino({ level: 'error' }), {
      retryMinSeconds: 0,
      retryMaxSeconds: 1,
    });
  });
  afterAll(() => server?.close());

  /** Submits a one-round plan for three devices; runs three `run` processes; returns the completed round. */
  async function roundWith(
    name: string,
    values: number[][],
    tag: string,
    options: Record<string, unknown> = {},
  ): Promise<RoundInfo> {
    const population = `python-${tag}-${process.pid}`;
    const plan = PLAN_LIBRARY[name]!.build({
      collection: population,
      rounds: 1,
      targetClients: values.length,
      overSelection: 1,
      ...options,
    });
    const res = await operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const runs = values.map((v, i) => {
      const data = path.join(dir, `${tag}-device-${i}.csv`);
      fs.writeFileSync(data, `value\n${v.join('\n')}\n`);
      const args = ['run', '--server', server.url, '--population', population];
      return python([...args, '--device-id', `${tag}-device-${i}`, '--data', data, '--max-wait-s', '1']);
    });
    for (const r of await Promise.all(runs)) {
      expect(r).toMatchObject({ code: 0, stderr: '' });
      expect(r.stdout).toMatch(/^completed round 1\.1 of plan \w+: uploaded \d+ bytes$/m);
    }
    return eventually(`round 1 of ${name} to complete`, async () => {
      const { rounds } = (await (await operator(`/v1/plans/${id}/rounds`)).json()) as { rounds: RoundInfo[] };
      return rounds.find((r) => r.round === 1 && r.phase === 'completed');
    });
  }

  test('three devices each complete a federated-sum, a histogram and a secure histogram round, exactly', async () => {
    const counts = [1, 2, 0, 1, 0, 0, 0, 0, 0, 2];
    const histogramData = [[0, 1, 1, 12], [9, 9, -1], [3]];
    const [sum, histogram, secure] = await Promise.all([
      roundWith('federated-sum', [[1, 2, 3], [10, -4], [100]], 'sum'),
      roundWith('histogram', histogramData, 'histogram'),
      // secure_sum without SecAgg masking: V2 travels in the clear (the client refuses masked rounds).
      roundWith('histogram', histogramData, 'secure', { secure: true, secureAggregation: 'none' }),
    ]);
    expect(sum.aggregated_clients).toBe(3);
    expect(sum.output).toEqual({ sum: 112 });
    expect(histogram.output).toEqual({ counts, clients: 3 });
    expect(secure.output).toEqual({ counts, clients: 3 });
  });

  test('a round that masks its sums with SecAgg is refused by name', async () => {
    const population = `python-secagg-${process.pid}`;
    const plan = PLAN_LIBRARY['federated-sum']!.build({
      collection: population,
      secure: true,
      targetClients: 3,
    });
    const res = await operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    expect(res.status).toBe(201);
    const data = path.join(dir, 'secagg.csv');
    fs.writeFileSync(data, 'value\n1\n');
    const args = ['run', '--server', server.url, '--population', population, '--data', data];
    const result = await python([...args, '--device-id', 'secagg-device', '--max-wait-s', '1']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^SECAGG_UNSUPPORTED: round 1\.1 of plan \w+ masks its secure sums \(secagg\+\)/,
    );
  });

  test('a session of a stateful program is left at once, not held until the server times it out', async () => {
    const stateful = { ...sumProgram(2, 2), population: `python-program-${process.pid}` };
    const res = await operator('/v1/programs', { method: 'POST', body: JSON.stringify(stateful) });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const data = path.join(dir, 'program.csv');
    fs.writeFileSync(data, 'value\n1\n');
    const args = ['run', '--server', server.url, '--population', stateful.population, '--data', data];
    // It never gets a task here, so it runs until killed; what matters is what it did first, however long
    // a loaded machine takes to get there.
    const child = spawn('python3', [CLIENT, ...args, '--device-id', 'python-program', '--max-wait-s', '1']);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await eventually('the client to leave its session', async () =>
        /left session \S+: stateful programs are not supported/.test(stderr) ? true : undefined,
      );
    } finally {
      child.kill();
    }
    const summary = (await (await operator(`/v1/programs/${id}`)).json()) as {
      sessions: Record<string, number>;
    };
    expect(summary.sessions).toMatchObject({ live: 0, left: 1 });
  });
});
