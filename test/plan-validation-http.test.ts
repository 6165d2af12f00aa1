/**
 * The hostile plans of issue 7 submitted over real HTTP (port 0, global fetch) to the real API, store,
 * engine and plan cache on a real Redis (127.0.0.1:6379, unique key prefix): every one answers a 4xx with a
 * code and the JSON pointer of the problem, never a 5xx, and a plan whose function is named like an
 * Object.prototype member is accepted and served whole to clients.
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
import { openTestStore, type TestStore } from '../src/store/testing';
import {
  callOfUndefined,
  deeplyNestedPlanText,
  hugeConstPlan,
  renamedFunctionPlan,
  secureSumPlan,
  sumPlan,
  type Json,
} from './support/hostile-plans';

const OPERATOR = 'operator-token-for-validation-tests';
const op = { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' };

let ts: TestStore;
let jobs: BullJobs;
let server: http.Server;
let url: string;

beforeAll(async () => {
  ts = openTestStore('validation');
  jobs = new BullJobs(ts.redis, ts.prefix);
  const config = loadConfig(
    {},
    {
      operatorToken: OPERATOR,
      tokenSecret: 'task-token-secret-for-validation-tests',
      maxPlanBytes: 16 << 20,
    },
  );
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
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await jobs.queue.obliterate({ force: true });
  await jobs.close();
  await ts.close();
});

async function submit(body: string): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${url}/v1/plans`, { method: 'POST', headers: op, body });
  return { status: res.status, body: await res.json() };
}

const refused: [string, () => string, number, string, string, RegExp][] = [
  [
    'types nested 2,000 deep',
    () => deeplyNestedPlanText(2000),
    400,
    'PLAN_LIMIT_EXCEEDED',
    `/client_data/element${'/fields/0/type'.repeat(20)}/fields/0`,
    /nesting deeper than 64 levels/,
  ],
  [
    'arrays nested 100,000 deep (JSON.parse copes; nothing recursive may see them)',
    () =>
      JSON.stringify(sumPlan()).replace(
        '"description":',
        `"x":${'['.repeat(100_000)}${']'.repeat(100_000)},"description":`,
      ),
    400,
    'PLAN_LIMIT_EXCEEDED',
    `/x${'/0'.repeat(63)}`,
    /nesting deeper than 64 levels/,
  ],
  [
    'a call of an undefined "toString"',
    () => JSON.stringify(callOfUndefined('toString')),
    400,
    'PLAN_TYPE_ERROR',
    '/computations/work/nodes/0/attrs/fn',
    /unknown function "toString"/,
  ],
  [
    'a call of an undefined "constructor"',
    () => JSON.stringify(callOfUndefined('constructor')),
    400,
    'PLAN_TYPE_ERROR',
    '/computations/work/nodes/0/attrs/fn',
    /unknown function "constructor"/,
  ],
  [
    'a function named "__proto__"',
    () => JSON.stringify(renamedFunctionPlan('__proto__')),
    400,
    'PLAN_SCHEMA_INVALID',
    '/functions/__proto__',
    /reserved/,
  ],
  [
    'a const literal of 2,000,000 entries',
    () => JSON.stringify(hugeConstPlan(2_000_000)),
    400,
    'PLAN_LIMIT_EXCEEDED',
    '/computations/zero/nodes/0/attrs/value',
    /more than the limit of 1048576/,
  ],
  [
    'secure_sum_bitwidth 0',
    () => JSON.stringify(secureSumPlan({ bitwidth: 0, maxInput: 10, modulus: 10 })),
    400,
    'PLAN_TYPE_ERROR',
    '/computations/secure_sum_bitwidth/nodes/0',
    /gives 0, which the server refuses/,
  ],
  [
    'secure_modular_sum_modulus 0',
    () => JSON.stringify(secureSumPlan({ bitwidth: 8, maxInput: 10, modulus: 0 })),
    400,
    'PLAN_TYPE_ERROR',
    '/computations/secure_modular_sum_modulus/nodes/0',
    /gives 0, which the server refuses/,
  ],
  [
    'duplicate client data field names',
    () =>
      JSON.stringify(
        sumPlan((p) => {
          const t = { kind: 'tensor', dtype: 'float32', shape: [null] };
          p.client_data.element = {
            kind: 'struct',
            fields: [
              { name: 'x', type: t },
              { name: 'x', type: t },
            ],
          };
        }),
      ),
    400,
    'PLAN_TYPE_ERROR',
    '/client_data/element/fields/1/name',
    /used twice/,
  ],
  [
    'a fixed batch dimension unequal to batch_size',
    () =>
      JSON.stringify(
        sumPlan((p) => (p.client_data.element = { kind: 'tensor', dtype: 'float32', shape: [5] })),
      ),
    400,
    'PLAN_TYPE_ERROR',
    '/client_data/element/shape/0',
    /not null and not batch_size 2/,
  ],
];

test.each(refused)(
  '%s: refused with a code and a pointer',
  async (_name, body, status, code, path, message) => {
    const res = await submit(body());
    expect({ status: res.status, code: res.body.error?.code }).toEqual({ status, code });
    expect(res.body.error.details).toContainEqual({ path, message: expect.stringMatching(message) });
  },
);

test('a plan whose function is named "constructor" is accepted and its client plan holds the function', async () => {
  const res = await submit(JSON.stringify(renamedFunctionPlan('constructor')));
  expect(res.status).toBe(201);
  const client = await fetch(`${url}/v1/plans/${res.body.id}/client-plan`);
  expect(client.status).toBe(200);
  const doc = await client.json();
  expect(Object.keys(doc.functions)).toEqual(['constructor']);
  expect(doc.work.nodes.some((n: Json) => n.attrs?.fn === 'constructor')).toBe(true);
});

test('the server still serves after every hostile plan', async () => {
  const res = await fetch(`${url}/healthz`);
  expect(res.status).toBe(200);
});
