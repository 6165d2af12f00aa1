/**
 * `roundhouse validate` (the built CLI, bin/roundhouse.js: `npm test` builds first; alone: `npm run build`)
 * against the real API: for the same plan file, the CLI's `--json` answer equals the body POST /v1/plans
 * answers (real HTTP, real store and engine on a real Redis at 127.0.0.1:6379 with a unique key prefix),
 * its human output lists the same pointers and messages, and the exit codes follow the CLI's convention.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { BullJobs } from '../src/aggregation/jobs';
import { createApp } from '../src/api/app';
import { loadConfig } from '../src/config';
import { LocalEvaluator } from '../src/isolate/local-evaluator';
import { PLAN_LIBRARY } from '../src/plans';
import {
  defineSecureParams,
  EMPTY,
  f32,
  named,
  PlanBuilder,
  updateParam,
  workParam,
  workResult,
} from '../src/authoring';
import { RoundEngine } from '../src/rounds/engine';
import { StorePlanCache } from '../src/rounds/plan-cache';
import { openTestStore, type TestStore } from '../src/store/testing';
import { varianceProgram } from './support/programs';

const root = path.join(__dirname, '..');
const bin = path.join(root, 'bin', 'roundhouse.js');
const OPERATOR = 'operator-token-for-validate-cli-tests';
/** The server settings of this test, given to the API's `loadConfig` and to the CLI child alike. */
const SERVER_ENV = { MAX_PLAN_BYTES: String(64 << 10) };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The child's environment: none of the server settings that would change its limits from the API's. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(LIMIT_|SCHEDULE_|MAX_PLAN_BYTES$)/.test(k)) env[k] = v;
  }
  return { ...env, ...SERVER_ENV };
}

function cli(args: string[]): Promise<Run> {
  if (!fs.existsSync(path.join(root, 'dist', 'src', 'cli', 'validate.js')))
    throw new Error('dist/ is missing or stale: run `npm run build` first');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: root, env: childEnv(), timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

let ts: TestStore;
let jobs: BullJobs;
let server: http.Server;
let url: string;
let dir: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-validate-'));
  ts = openTestStore('validate-cli');
  jobs = new BullJobs(ts.redis, ts.prefix);
  // The same environment as the CLI child's: the defaults but for SERVER_ENV.
  const config = loadConfig(SERVER_ENV, {
    operatorToken: OPERATOR,
    tokenSecret: 'task-token-secret-validate-cli',
  });
  const plans = new StorePlanCache(ts.store, config.limits);
  const log = pino({ level: 'silent' });
  const engine = new RoundEngine({
    store: ts.store,
    jobs,
    plans,
    evaluator: new LocalEvaluator(config.limits),
    config: { limits: config.limits, maxRoundAttempts: 10 },
    log,
  });
  server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  server.on(
    'request',
    createApp({
      config: { ...config, publicUrl: url },
      store: ts.store,
      engine,
      plans,
      jobs,
      log,
      ready: () => ts.redis.ping(),
    }),
  );
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await jobs?.queue.obliterate({ force: true });
  await jobs?.close();
  await ts?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Writes `text` to a file of the temp dir and returns its path. */
function planFile(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

/** What POST /v1/plans answers for the file's content, sent as `roundhouse submit` sends it. */
async function submit(file: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/v1/plans`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' },
    body: JSON.stringify(JSON.parse(fs.readFileSync(file, 'utf8'))),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- plan JSON is edited freely to break it
type Json = any;

const federatedSum = (): Json => PLAN_LIBRARY['federated-sum']!.build({});

/**
 * A plan that passes every static check but whose `initialize` gives S = 1/0 = +Inf: only evaluating it, as
 * the server does before storing a plan, finds that.
 */
function infiniteStatePlan(): Json {
  const element = f32([null]);
  const pb = new PlanBuilder();
  pb.computation('initialize', undefined, (b) => b.div(b.scalar(1, 'float32'), b.scalar(0, 'float32')));
  pb.computation('prepare', f32(), (b) => b.struct([]));
  pb.computation('work', workParam(element, EMPTY), (b) => workResult(b, b.scalar(0, 'float32')));
  pb.computation('zero', undefined, (b) => b.scalar(0, 'float32'));
  pb.computation('accumulate', named({ accumulator: f32(), update: f32() }), (b, p) =>
    b.add(b.field(p, 'accumulator'), b.field(p, 'update')),
  );
  pb.computation('merge', named({ a: f32(), b: f32() }), (b, p) => b.add(b.field(p, 'a'), b.field(p, 'b')));
  pb.computation('report', f32(), (_b, a) => a);
  defineSecureParams(pb);
  pb.computation('update', updateParam(f32(), f32()), (b, p) =>
    b.struct([b.field(p, 'state'), b.struct({ total: b.get(p, 'aggregates.report') })]),
  );
  return pb.build({
    name: 'infinite-state',
    client_data: { collection: 'readings', element, batch_size: 4 },
    schedule: { rounds: 1, target_clients: 2 },
  });
}

describe('roundhouse validate answers what POST /v1/plans answers', () => {
  test('a valid library plan: exit 0, the summary the server stores, every signature', async () => {
    const file = planFile('valid.json', `${JSON.stringify(federatedSum(), null, 2)}\n`);
    const api = await submit(file);
    expect(api.status).toBe(201);

    const asJson = await cli(['validate', '--json', file]);
    expect(asJson).toMatchObject({ code: 0, stderr: '' });
    const summary = JSON.parse(asJson.stdout) as Record<string, unknown>;
    expect(summary).toMatchObject({
      name: api.body.name,
      population: api.body.population,
      rounds: api.body.rounds,
    });
    expect(summary.signatures).toMatchObject({
      accumulate: '(<accumulator=int32,update=int32> -> int32)',
      'function add_batch': '(<sum=int32,batch=int32[?]> -> int32)',
    });

    const human = await cli(['validate', file]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`${file}: valid plan "federated-sum" (population numbers, 3 rounds)\n`);
    expect(human.stdout).toMatch(/^ {2}accumulate +\(<accumulator=int32,update=int32> -> int32\)$/m);
  });

  // The plan, the code POST /v1/plans answers, and a pointer among its details or what its message says.
  const invalid: [string, () => Json, string, string | RegExp][] = [
    [
      'a schema-invalid plan (unknown property, bad schedule value)',
      () => {
        const p = federatedSum();
        p.colour = 'blue';
        p.schedule.rounds = 0;
        return p;
      },
      'PLAN_SCHEMA_INVALID',
      '/schedule/rounds',
    ],
    [
      "a type error in accumulate (its update is float32, work's is int32)",
      () => {
        const p = federatedSum();
        p.computations.accumulate.parameter.type.fields[1].type.dtype = 'float32';
        return p;
      },
      'PLAN_TYPE_ERROR',
      '/computations/accumulate/nodes/2',
    ],
    [
      'a plan outside the server bounds (more rounds than SCHEDULE_MAX_ROUNDS)',
      () => {
        const p = federatedSum();
        p.schedule.rounds = 200_000;
        return p;
      },
      'PLAN_OUT_OF_BOUNDS',
      '/schedule/rounds',
    ],
    [
      'a plan over MAX_PLAN_BYTES (its description alone is larger)',
      () => ({ ...federatedSum(), description: 'x'.repeat(65 << 10) }),
      'PLAN_LIMIT_EXCEEDED',
      /^the body is larger than 65536 bytes/,
    ],
    [
      'a plan whose initialize gives +Inf (found by evaluating it)',
      infiniteStatePlan,
      'EVAL_ERROR',
      /initialize gave a non-finite value/,
    ],
  ];

  test.each(invalid)('%s: exit 1, the same code, message, pointers', async (_what, make, code, where) => {
    const file = planFile(`${code}.json`, JSON.stringify(make(), null, 2));
    const api = await submit(file);
    expect(api.status).toBeGreaterThanOrEqual(400);
    expect(api.status).toBeLessThan(500);
    const error = api.body.error as {
      code: string;
      message: string;
      details: { path: string; message: string }[];
    };
    expect(error.code).toBe(code);
    if (typeof where === 'string') expect(error.details.map((d) => d.path)).toContain(where);
    else expect(error.message).toMatch(where);

    const asJson = await cli(['validate', '--json', file]);
    expect(asJson.code).toBe(1);
    expect(JSON.parse(asJson.stdout)).toEqual(api.body);

    const human = await cli(['validate', file]);
    expect(human.code).toBe(1);
    expect(human.stdout).toBe('');
    const lines = human.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(
      `${file}: ${api.status} ${code}: ${(api.body.error as { message: string }).message}`,
    );
    expect(lines.slice(1)).toEqual(error.details.map((d) => `  ${d.path || '/'}: ${d.message}`));
  });
});

describe('roundhouse validate on a stateful program (format roundhouse.program/v1)', () => {
  test('a valid program: exit 0, its name, population, steps, and every value placed and typed', async () => {
    const file = planFile('program.json', JSON.stringify(varianceProgram(), null, 2));
    const human = await cli(['validate', file]);
    expect(human).toMatchObject({ code: 0, stderr: '' });
    expect(human.stdout).toContain(
      `${file}: valid program "mean-then-variance" (population sensors, 10 steps)\n`,
    );
    expect(human.stdout).toMatch(/^ {2}values +clients +float32\[\?\]\*$/m);
    expect(human.stdout).toMatch(/^ {2}variance +server +float32$/m);

    const asJson = await cli(['validate', '--json', file]);
    expect(asJson.code).toBe(0);
    const summary = JSON.parse(asJson.stdout) as Record<string, unknown>;
    expect(summary).toMatchObject({
      name: 'mean-then-variance',
      population: 'sensors',
      steps: 10,
      values: { mean: { placement: 'server', type: 'float32' }, mean_c: { placement: 'clients' } },
      signatures: { mean_of: '(<sum=float32,sumsq=float32,count=float32> -> float32)' },
    });
  });

  test('a server step reading a client value: exit 1, PROGRAM_PRIVACY_VIOLATION with the pointer', async () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- program JSON is edited freely to break it
    const program: any = varianceProgram();
    program.steps[3].args = ['stats'];
    const file = planFile('leaky-program.json', JSON.stringify(program));
    const human = await cli(['validate', file]);
    expect(human.code).toBe(1);
    expect(human.stdout).toBe('');
    const lines = human.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(
      `${file}: 400 PROGRAM_PRIVACY_VIOLATION: the program breaks the privacy rule (1 problem):`,
    );
    expect(lines[1]).toMatch(/^ {2}\/steps\/3\/args\/0: "stats" is a client value: /);

    const asJson = await cli(['validate', '--json', file]);
    expect(asJson.code).toBe(1);
    expect(JSON.parse(asJson.stdout)).toMatchObject({
      error: { code: 'PROGRAM_PRIVACY_VIOLATION', details: [{ path: '/steps/3/args/0' }] },
    });
  });
});

describe('roundhouse validate: files and usage', () => {
  test('a missing plan argument or an unknown option is a usage error (exit 2)', async () => {
    const none = await cli(['validate']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/missing required argument 'plan'/);
    const bogus = await cli(['validate', '--bogus', 'x.json']);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(/unknown option '--bogus'/);
  });

  test('a missing file: exit 1, naming the file', async () => {
    const file = path.join(dir, 'no-such-plan.json');
    const r = await cli(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot read plan ${file}`);
  });

  test('a file that is not JSON: exit 1, naming the file; --json gives the API-shaped REQUEST_INVALID', async () => {
    const file = planFile('broken.json', '{"format": "roundhouse.plan/v1",');
    const r = await cli(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file} is not valid JSON`);
    const j = await cli(['validate', '--json', file]);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toMatchObject({
      error: { code: 'REQUEST_INVALID', details: [{ path: '' }] },
    });
  });
});
