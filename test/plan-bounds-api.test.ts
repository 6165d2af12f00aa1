/**
 * Plans that would hurt the server are refused at submit over real HTTP, against a real Redis on a unique
 * key prefix (issue 7): the memory bomb and the matmul loop by the static cost model, absurd schedules by the
 * configured bounds, each with the JSON pointer of what is wrong; the library plans are accepted, and the
 * limits follow the environment the server is configured from.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { BullJobs } from '../src/aggregation/jobs';
import { createApp } from '../src/api/app';
import { loadConfig } from '../src/config';
import { RoundEngine } from '../src/rounds/engine';
import { LocalEvaluator } from '../src/isolate/local-evaluator';
import { StorePlanCache } from '../src/rounds/plan-cache';
import { PLAN_LIBRARY } from '../src/plans';
import { openTestStore, type TestStore } from '../src/store/testing';
import basePlan from './fixtures/sum-plan.json';
import {
  BOMB_CONST_INDEX,
  initializeBombPlan,
  LARGE_UPDATE_NODE_INDEX,
  largeUpdatePlan,
  MATMUL_REPEAT_INDEX,
  matmulLoopPlan,
  memoryBombPlan,
} from './support/costly-plans';

const OPERATOR = 'operator-token-for-bounds-tests';
const log = pino({ level: 'silent' });

let ts: TestStore;
let jobs: BullJobs;
const servers: http.Server[] = [];

/** An API on its own HTTP server, configured from `env` as `roundhouse start` would be. */
async function serve(env: Record<string, string> = {}): Promise<string> {
  const server = http.createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = loadConfig(env, { operatorToken: OPERATOR, publicUrl: url });
  const plans = new StorePlanCache(ts.store, config.limits);
  const engine = new RoundEngine({
    store: ts.store,
    jobs,
    plans,
    evaluator: new LocalEvaluator(config.limits),
    config,
    log,
  });
  const ready = () => ts.redis.ping();
  server.on('request', createApp({ config, store: ts.store, engine, plans, jobs, log, ready }));
  return url;
}

let url: string;

beforeAll(async () => {
  ts = openTestStore('bounds');
  jobs = new BullJobs(ts.redis, ts.prefix);
  url = await serve();
});

afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
  await jobs.queue.obliterate({ force: true });
  await jobs.close();
  await ts.close();
});

/** The status and error body of a plan submission. */
async function submit(
  plan: unknown,
  at = url,
): Promise<{ status: number; body: { id?: string; error?: { code: string; details: unknown[] } } }> {
  const res = await fetch(`${at}/v1/plans`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${OPERATOR}` },
    body: JSON.stringify(plan),
  });
  return { status: res.status, body: (await res.json()) as never };
}

async function planNames(): Promise<string[]> {
  const res = await fetch(`${url}/v1/plans`, { headers: { authorization: `Bearer ${OPERATOR}` } });
  const body = (await res.json()) as { plans: { name: string }[] };
  return body.plans.map((p) => p.name);
}

describe('submitting a plan the server cannot afford', () => {
  test('the memory bomb is refused with 422 at its largest node, with the estimate and the limit', async () => {
    const { status, body } = await submit(memoryBombPlan());
    expect(status).toBe(422);
    expect(body.error!.code).toBe('PLAN_OUT_OF_BOUNDS');
    expect(body.error!.details).toContainEqual({
      path: `/computations/accumulate/nodes/${BOMB_CONST_INDEX}`,
      message: expect.stringMatching(
        /^accumulate: estimated peak memory of 6\.78 GB \(\d+ bytes\) per evaluation is more than the limit of 1\.07 GB .*LIMIT_MAX_PEAK_BYTES/,
      ),
    });
  });

  test('the memory bomb in initialize is refused before initialize runs in the API process', async () => {
    const { status, body } = await submit(initializeBombPlan());
    expect(status).toBe(422);
    expect(body.error!.details).toContainEqual({
      path: '/initialize/nodes/0',
      message: expect.stringMatching(/^initialize: estimated peak memory of 6\.78 GB/),
    });
    const health = await fetch(`${url}/readyz`);
    expect(health.status).toBe(200);
  });

  test('the 40 x 2048x2048 matmul loop is refused with 422 at its repeat node', async () => {
    const { status, body } = await submit(matmulLoopPlan());
    expect(status).toBe(422);
    expect(body.error).toMatchObject({
      code: 'PLAN_OUT_OF_BOUNDS',
      details: [
        {
          path: `/computations/accumulate/nodes/${MATMUL_REPEAT_INDEX}`,
          message: expect.stringMatching(
            /estimated 6\.87e\+11 FLOPs .* limit of 1\.00e\+9 \(LIMIT_MAX_FLOPS\)/,
          ),
        },
      ],
    });
  });

  test('a loop over an update declared float32[?] is refused at the size U really has', async () => {
    const { status, body } = await submit(largeUpdatePlan(1000));
    expect(status).toBe(422);
    expect(body.error).toMatchObject({
      code: 'PLAN_OUT_OF_BOUNDS',
      details: [
        {
          path: `/computations/accumulate/nodes/${LARGE_UPDATE_NODE_INDEX}`,
          message: expect.stringMatching(/estimated 4\.00e\+9 FLOPs .* \(LIMIT_MAX_FLOPS\)/),
        },
      ],
    });
  });

  test.each([
    ['selection_timeout_s', 1e-300],
    ['reporting_deadline_s', 1e300],
    ['rounds', 1_000_000],
  ])('a schedule with %s %p is refused with 422 and its pointer', async (field, value) => {
    const plan = { ...basePlan, schedule: { ...basePlan.schedule, [field]: value } };
    const { status, body } = await submit(plan);
    expect(status).toBe(422);
    expect(body.error).toMatchObject({
      code: 'PLAN_OUT_OF_BOUNDS',
      details: [{ path: `/schedule/${field}`, message: expect.stringContaining(field) }],
    });
  });

  test('nothing refused was stored, and every library plan is accepted beside them', async () => {
    expect(await planNames()).not.toEqual(expect.arrayContaining(['memory-bomb']));
    expect(await planNames()).not.toEqual(expect.arrayContaining(['matmul-loop']));
    expect(await planNames()).not.toEqual(expect.arrayContaining(['initialize-bomb']));
    expect(await planNames()).not.toEqual(expect.arrayContaining(['large-update']));
    for (const [name, lib] of Object.entries(PLAN_LIBRARY)) {
      const { status, body } = await submit(lib.build({}));
      expect([name, status, body.error]).toEqual([name, 201, undefined]);
    }
  });

  test('the limits follow the configuration', async () => {
    const lenient = await serve({ LIMIT_MAX_FLOPS: '1e12', SCHEDULE_MIN_SECONDS: '0' });
    expect((await submit(matmulLoopPlan(), lenient)).status).toBe(201);
    const fast = { ...basePlan, schedule: { ...basePlan.schedule, selection_timeout_s: 0.5 } };
    expect((await submit(fast, lenient)).status).toBe(201);
    expect((await submit(fast)).status).toBe(422);
    const strict = await serve({ LIMIT_MAX_CLIENT_FLOPS: '1000' });
    const { status, body } = await submit(PLAN_LIBRARY.fedavg!.build({}), strict);
    expect(status).toBe(422);
    expect(body.error!.details).toEqual([
      {
        path: expect.stringMatching(/^\/computations\/work\/nodes\/\d+$/),
        message: expect.stringMatching(/LIMIT_MAX_CLIENT_FLOPS/),
      },
      {
        path: expect.stringMatching(/^\/evaluate\/nodes\/\d+$/),
        message: expect.stringMatching(/LIMIT_MAX_CLIENT_FLOPS/),
      },
    ]);
  });
});
