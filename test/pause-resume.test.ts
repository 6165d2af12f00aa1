/**
 * Pause and resume over real HTTP against a real Redis (127.0.0.1:6379) on a unique prefix, with a clock
 * the test moves: task tokens stay valid while their round takes uploads, however long the plan was
 * paused. No worker runs: uploads stay queued, deadline jobs never fire.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import pino from 'pino';
import { BullJobs } from '../src/aggregation/jobs';
import { createApp } from '../src/api/app';
import { bundleLeaves, writeBundle } from '../src/codec';
import { loadConfig } from '../src/config';
import { LocalEvaluator } from '../src/isolate/local-evaluator';
import { RoundEngine } from '../src/rounds/engine';
import { StorePlanCache } from '../src/rounds/plan-cache';
import { openTestStore, type TestStore } from '../src/store/testing';

const OPERATOR = 'operator-token-for-tests';
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'sum-plan.json'), 'utf8'));
const op = { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' };

let ts: TestStore;
let jobs: BullJobs;
let plans: StorePlanCache;
let server: http.Server;
let url: string;
/** The API's clock: real time moved on by `skew` ms. */
let skew = 0;

beforeAll(async () => {
  ts = openTestStore('pause-resume');
  jobs = new BullJobs(ts.redis, ts.prefix);
  const limits = loadConfig({}).limits;
  plans = new StorePlanCache(ts.store, limits);
  const log = pino({ level: 'silent' });
  const engine = new RoundEngine({
    store: ts.store,
    jobs,
    plans,
    evaluator: new LocalEvaluator(limits),
    config: { limits, maxRoundAttempts: 10 },
    log,
  });
  server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = loadConfig(
    {},
    { operatorToken: OPERATOR, tokenSecret: 'task-token-secret-for-tests', publicUrl: url },
  );
  const now = () => Date.now() + skew;
  server.on('request', createApp({ config, store: ts.store, engine, plans, jobs, log, now }));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await jobs.queue.obliterate({ force: true });
  await jobs.close();
  await ts.close();
});

interface Assignment {
  readonly plan_id: string;
  readonly upload_url: string;
  readonly token: string;
  readonly deadline: number;
  readonly device: string;
}

async function operator(pathname: string, body?: unknown): Promise<{ status: number; json: { id: string } }> {
  const res = await fetch(`${url}${pathname}`, {
    method: 'POST',
    headers: op,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: await res.json() };
}

let devices = 0;
async function checkin(population: string): Promise<Assignment> {
  const device = `pause-device-${++devices}`;
  const res = await fetch(`${url}/v1/populations/${population}/checkin`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ device_id: device }),
  });
  expect(res.status).toBe(200);
  const body = await res.json();
  expect(body.assignment).toBeDefined();
  return { ...body.assignment, device };
}

async function upload(a: Assignment, sum: number): Promise<{ status: number; code?: string }> {
  const [leaf] = bundleLeaves((await plans.get(a.plan_id))!.uploadType);
  const bytes = writeBundle([{ name: leaf!.name, dtype: 'float32', shape: [], data: Float32Array.of(sum) }]);
  const res = await fetch(a.upload_url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${a.token}`,
      'content-type': 'application/octet-stream',
      'x-device-credential': a.device,
    },
    body: Uint8Array.from(bytes),
  });
  const body = await res.json();
  return { status: res.status, code: body.error?.code };
}

test('a token issued before a pause longer than its lifetime still uploads after the resume', async () => {
  const population = `pause-${process.pid}`;
  const created = await operator('/v1/plans', {
    ...fixture,
    population,
    schedule: { rounds: 1, target_clients: 3, over_selection: 1, min_reports: 2, reporting_deadline_s: 60 },
  });
  expect(created.status).toBe(201);
  const id: string = created.json.id;
  const before = await checkin(population);
  const ref = { plan: id, round: 1, attempt: 1 };
  const deadline = (await ts.store.getRound(ref))!.reporting_deadline!;
  expect(before.deadline).toBe(deadline);

  skew += 1_000;
  expect((await operator(`/v1/plans/${id}/pause`)).status).toBe(200);
  // An hour paused: the token's exp (60 s after the round opened) passes meanwhile.
  skew += 3_600_000;
  expect((await operator(`/v1/plans/${id}/resume`)).status).toBe(200);
  const moved = (await ts.store.getRound(ref))!.reporting_deadline!;
  expect(moved - deadline).toBeGreaterThanOrEqual(3_600_000);
  expect(moved - deadline).toBeLessThan(3_600_000 + 60_000);

  skew += 1_000;
  expect(await upload(before, 1)).toEqual({ status: 202 });
  // A client assigned after the resume is told the moved deadline.
  const after = await checkin(population);
  expect(after.deadline).toBe(moved);

  // Past the moved deadline the token is expired like any other.
  skew = moved - Date.now() + 1_000;
  expect(await upload(after, 2)).toEqual({ status: 401, code: 'TOKEN_INVALID' });
});
