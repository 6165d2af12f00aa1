/**
 * Retention over the whole server path (docs/server.md, "Retention"): a 100-round plan run by the engine and
 * an aggregation worker against a real Redis on a unique prefix leaves a bounded number of keys and bytes,
 * and `DELETE /v1/plans/{id}` over real HTTP returns the prefix's key count and memory to their baseline and
 * removes the plan's delayed deadline jobs. Plan code runs in-process (LocalEvaluator): this test is about
 * Redis, not isolation.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import pino from 'pino';
import sumPlan from './fixtures/sum-plan.json';
import { BullJobs } from '../src/aggregation/jobs';
import { AggregationWorker } from '../src/aggregation/worker';
import { createApp } from '../src/api/app';
import { bundleLeaves, writeBundle } from '../src/codec';
import { loadConfig } from '../src/config';
import { LocalEvaluator } from '../src/isolate/local-evaluator';
import { RoundEngine } from '../src/rounds/engine';
import { StorePlanCache } from '../src/rounds/plan-cache';
import { newTaskId } from '../src/store/ids';
import { openTestStore, scanKeys, type TestStore } from '../src/store/testing';
import type { RoundRef } from '../src/store/types';

const OPERATOR = 'operator-token-for-retention';
const ROUNDS = 100;
/** The round that fails once (a worker rejects its one upload) before its second attempt completes. */
const FAILING_ROUND = 50;
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

let ts: TestStore;
let jobs: BullJobs;
let plans: StorePlanCache;
let engine: RoundEngine;
let worker: AggregationWorker;
let workerRedis: Redis;
let server: http.Server;
let url: string;
const config = loadConfig({}, { operatorToken: OPERATOR, workerBatch: 1, workerBatchWaitMs: 0 });

beforeAll(async () => {
  ts = openTestStore('retention-http');
  jobs = new BullJobs(ts.redis, ts.prefix);
  plans = new StorePlanCache(ts.store, config.limits);
  const evaluator = new LocalEvaluator(config.limits);
  engine = new RoundEngine({ store: ts.store, jobs, plans, evaluator, config, log });
  workerRedis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
  worker = new AggregationWorker({
    connection: workerRedis,
    store: ts.store,
    engine,
    plans,
    evaluator,
    config: { ...config, redisPrefix: ts.prefix },
    log,
  });
  await worker.start();
  server = http.createServer(createApp({ config, store: ts.store, engine, plans, jobs, log }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await worker?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await jobs.queue.obliterate({ force: true });
  await jobs.close();
  await workerRedis.quit();
  await ts.close();
});

const op = { authorization: `Bearer ${OPERATOR}` };
const del = (id: string) => fetch(`${url}/v1/plans/${id}`, { method: 'DELETE', headers: op });
const act = (id: string, action: string) =>
  fetch(`${url}/v1/plans/${id}/${action}`, { method: 'POST', headers: op });

async function submit(schedule: Record<string, number>): Promise<string> {
  const res = await fetch(`${url}/v1/plans`, {
    method: 'POST',
    headers: { ...op, 'content-type': 'application/json' },
    body: JSON.stringify({ ...sumPlan, schedule }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** Key count and MEMORY USAGE sum of every key under the store's prefix. */
async function footprint(pattern = `${ts.prefix}:*`): Promise<{ keys: number; bytes: number }> {
  const keys = await scanKeys(ts.redis, pattern);
  const pipeline = ts.redis.pipeline();
  for (const k of keys) pipeline.call('MEMORY', 'USAGE', k, 'SAMPLES', '0');
  const replies = (await pipeline.exec()) ?? [];
  const bytes = replies.reduce((sum, [err, n]) => {
    if (err) throw err;
    return sum + Number(n ?? 0);
  }, 0);
  return { keys: keys.length, bytes };
}

async function eventually<T>(what: string, check: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** What a client and the API do: take a task of the current round, upload `sum`, queue its accumulation. */
async function client(plan: string, sum: number): Promise<RoundRef> {
  const t = await eventually(`a task of ${plan}`, async () => {
    const r = await ts.store.tryAssign(plan, newTaskId(), Date.now(), newTaskId());
    return r.ok ? r : undefined;
  });
  const [leaf] = bundleLeaves((await plans.get(plan))!.uploadType);
  const bytes = writeBundle([{ name: leaf!.name, dtype: 'float32', shape: [], data: Float32Array.of(sum) }]);
  const res = await ts.store.acceptUpload(t.ref, t.task, bytes, Date.now(), 64);
  if (!res.ok) throw new Error(`upload refused: ${res.code}`);
  await jobs.accumulate(t.ref, t.task);
  return t.ref;
}

/** Delayed or waiting jobs of the queue that name the plan. */
async function queuedJobsOf(plan: string): Promise<string[]> {
  const queued = await jobs.queue.getJobs(['delayed', 'waiting', 'prioritized']);
  return queued.map((j) => j.id ?? '').filter((id) => id.includes(`-${plan}-`));
}

describe('retention of a plan over HTTP', () => {
  test('a 100-round plan stays bounded, and DELETE returns key count and memory to the baseline', async () => {
    const baseline = await footprint();
    const id = await submit({
      rounds: ROUNDS,
      target_clients: 1,
      over_selection: 1,
      min_reports: 1,
      min_clients_in_aggregate: 1,
      selection_timeout_s: 600,
      reporting_deadline_s: 600,
    });
    // Not while it runs.
    const active = await del(id);
    expect(active.status).toBe(409);
    expect(((await active.json()) as { error: { code: string } }).error.code).toBe('PLAN_ACTIVE');

    for (let n = 1; n <= ROUNDS; n++) {
      // One upload a round: a NaN one, which the worker rejects, fails the round's first attempt once.
      const ref = await client(id, n === FAILING_ROUND ? NaN : n);
      expect(ref.round).toBe(n);
      if (n === FAILING_ROUND) {
        await eventually('the failed attempt', async () =>
          (await ts.store.getPhase(ref)) === 'failed' ? true : undefined,
        );
        expect((await client(id, n)).attempt).toBe(2);
      }
    }
    await eventually('the plan to complete', async () =>
      (await ts.store.getPlan(id))?.status === 'completed' ? true : undefined,
    );
    // The last complete sweeps its attempt's tasks and partials right after it marks the plan completed.
    await eventually('the last sweep', async () =>
      (await scanKeys(ts.redis, `${ts.prefix}:{${id}}:gc:*`)).length === 0 &&
      (await ts.redis.exists(`${ts.prefix}:{${id}}:sweep`)) === 0
        ? true
        : undefined,
    );

    // The stated bound: five plan keys (plan, meta, state, history, list of kept broadcasts), one hash per
    // round plus one per failed attempt kept (here one), RETAIN_BROADCASTS broadcasts; about 1 KiB per
    // round hash and 16 KiB for the plan document and state.
    const planKeys = await scanKeys(ts.redis, `${ts.prefix}:{${id}}:*`);
    const keyBound = 5 + ROUNDS + 1 + config.retainBroadcasts;
    expect(planKeys.length).toBeLessThanOrEqual(keyBound);
    expect(planKeys.filter((k) => k.endsWith(':broadcast'))).toHaveLength(config.retainBroadcasts);
    const used = await footprint(`${ts.prefix}:{${id}}:*`);
    expect(used.bytes).toBeLessThanOrEqual((ROUNDS + 1) * 1024 + 16 * 1024);
    const failed = (await ts.store.listRounds(id)).filter((r) => r.phase === 'failed');
    expect(failed.map((r) => `${r.round}.${r.attempt}`)).toEqual([`${FAILING_ROUND}.1`]);
    expect(await ts.store.getBroadcast({ plan: id, round: FAILING_ROUND, attempt: 1 })).toBeUndefined();
    // The attempts' 600 s deadline jobs are still delayed.
    expect((await queuedJobsOf(id)).length).toBeGreaterThan(0);

    const res = await del(id);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id, keys: planKeys.length });
    expect(await footprint()).toEqual(baseline);
    expect(await queuedJobsOf(id)).toEqual([]);
    expect((await fetch(`${url}/v1/plans/${id}`, { headers: op })).status).toBe(404);
    expect((await fetch(`${url}/v1/plans/${id}/client-plan`)).status).toBe(404);
    const again = await del(id);
    expect(again.status).toBe(404);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('PLAN_NOT_FOUND');
  }, 180_000);

  test('a paused plan is refused until it is cancelled; unknown ids are 404', async () => {
    const baseline = await footprint();
    const id = await submit({
      rounds: 2,
      target_clients: 3,
      selection_timeout_s: 600,
      reporting_deadline_s: 600,
    });
    expect((await act(id, 'pause')).status).toBe(200);
    const paused = await del(id);
    expect(paused.status).toBe(409);
    expect(await paused.json()).toMatchObject({ error: { code: 'PLAN_ACTIVE' } });
    expect((await act(id, 'cancel')).status).toBe(200);
    expect((await del(id)).status).toBe(200);
    expect(await footprint()).toEqual(baseline);
    expect((await del('p000000000000')).status).toBe(404);
    expect((await del('not-a-plan-id')).status).toBe(404);
    expect((await fetch(`${url}/v1/plans/${id}`, { method: 'DELETE' })).status).toBe(401);
  });
});
