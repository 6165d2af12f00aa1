import * as tf from '@tensorflow/tfjs';
import { Redis } from 'ioredis';
import sumPlan from '../../test/fixtures/sum-plan.json';
import { BullJobs, accumulateJobId } from '../aggregation/jobs';
import { AggregationWorker } from '../aggregation/worker';
import { bundleLeaves, decodeBundle, writeBundle } from '../codec';
import { initBackend } from '../compute/backend';
import { disposeValue, tensorsOf } from '../compute/value';
import { loadConfig } from '../config';
import { AppError } from '../errors';
import { createLogger } from '../log/logger';
import { newTaskId } from '../store/ids';
import { RedisRoundStore } from '../store/redis-round-store';
import type { RoundInfo, RoundRef } from '../store/types';
import { IsolatePool } from '../isolate/isolate-pool';
import { RoundEngine } from './engine';
import { StorePlanCache } from './plan-cache';

// The engine, the Redis store, BullMQ jobs and one aggregation worker, in-process against the local Redis
// on a prefix of their own; uploads go straight to the store (the API's part), jobs through BullMQ.
const prefix = `rh-engine-test-${process.pid}-${Date.now()}`;
// SCHEDULE_MIN_SECONDS 0: the deadline tests use sub-second timeouts to stay fast.
const config = loadConfig(
  { SCHEDULE_MIN_SECONDS: '0' },
  { redisPrefix: prefix, workerBatch: 4, workerBatchWaitMs: 20 },
);
const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const storeRedis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 });
const jobsRedis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
const workerRedis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
const secondRedis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
const store = new RedisRoundStore(storeRedis, prefix);
const jobs = new BullJobs(jobsRedis, prefix);
const plans = new StorePlanCache(store, config.limits);
// Plan code runs in real isolates (worker threads of dist/, which `npm test` builds first).
const evaluator = new IsolatePool({ config: config.isolates, limits: config.limits, log });
const engine = new RoundEngine({ store, jobs, plans, evaluator, config, log });
let worker: AggregationWorker;
let tensorsBefore = 0;

type Schedule = Record<string, number>;
const planWith = (schedule: Schedule) => ({ ...sumPlan, schedule });

async function eventually<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const roundIn = (plan: string, round: number, attempt: number, phases: RoundInfo['phase'][]) =>
  eventually(`round ${round}.${attempt} of ${plan} to be ${phases.join('/')}`, async () => {
    const info = await store.getRound({ plan, round, attempt });
    return info && phases.includes(info.phase) ? info : undefined;
  });

/** Work's result bundle `<U = <sum>, <>, <>, <>>` as a client would upload it. */
async function uploadBytes(plan: string, sum: number): Promise<Uint8Array> {
  const loaded = (await plans.get(plan))!;
  const [leaf] = bundleLeaves(loaded.uploadType);
  return writeBundle([{ name: leaf!.name, dtype: 'float32', shape: [], data: Float32Array.of(sum) }]);
}

/** Assigns a task in the plan's current round. */
async function assign(plan: string): Promise<{ ref: RoundRef; task: string }> {
  const r = await store.tryAssign(plan, newTaskId(), Date.now(), newTaskId());
  if (!r.ok) throw new Error(`no task: ${r.reason}`);
  return { ref: r.ref, task: r.task };
}

/** What the API does with an upload: record it, then queue its accumulation. */
async function upload(t: { ref: RoundRef; task: string }, bytes: Uint8Array): Promise<void> {
  const res = await store.acceptUpload(t.ref, t.task, bytes, Date.now(), 64);
  if (!res.ok) throw new Error(`upload refused: ${res.code}`);
  await jobs.accumulate(t.ref, t.task);
}

async function client(plan: string, sum: number): Promise<{ ref: RoundRef; task: string }> {
  const t = await assign(plan);
  await upload(t, await uploadBytes(plan, sum));
  return t;
}

async function roundsDone(plan: string): Promise<number> {
  const loaded = (await plans.get(plan))!;
  const S = decodeBundle((await store.getState(plan))!, loaded.checked.types.S);
  try {
    return tensorsOf(S)[0]!.dataSync()[0]!;
  } finally {
    disposeValue(S);
  }
}

beforeAll(async () => {
  await initBackend();
  tensorsBefore = tf.memory().numTensors;
  worker = new AggregationWorker({ connection: workerRedis, store, engine, plans, evaluator, config, log });
  await worker.start();
});

afterAll(async () => {
  await worker?.close();
  await evaluator.close();
  await jobs.queue.obliterate({ force: true });
  await jobs.close();
  await store.clear();
  await Promise.all([storeRedis.quit(), jobsRedis.quit(), workerRedis.quit(), secondRedis.quit()]);
});

describe('RoundEngine with the Redis store, BullMQ and an aggregation worker', () => {
  test('rejects an invalid plan with every problem and stores nothing', async () => {
    const bad = { ...sumPlan, schedule: { rounds: 1, target_clients: 2, min_reports: 3 } };
    await expect(engine.submitPlan(bad)).rejects.toThrow(AppError);
    await expect(engine.submitPlan({ format: 'nope' })).rejects.toMatchObject({
      code: 'PLAN_SCHEMA_INVALID',
    });
    expect(await store.listPlans()).toHaveLength(0);
  });

  test('runs rounds: exact output, state advances, next round opens, plan completes', async () => {
    const summary = await engine.submitPlan(
      planWith({
        rounds: 2,
        target_clients: 3,
        over_selection: 1,
        min_reports: 2,
        selection_timeout_s: 60,
        reporting_deadline_s: 60,
      }),
    );
    expect(summary).toMatchObject({ round: 1, attempt: 1, status: 'active', rounds: 2, phase: 'selecting' });
    const id = summary.id;
    const r1 = (await store.getRound({ plan: id, round: 1, attempt: 1 }))!;
    expect(r1).toMatchObject({ selection_target: 3, target: 3, min_reports: 2, min_aggregate: 2 });
    expect(r1.secure_params).toEqual({ bitwidth: [], max_input: [], modulus: [] });
    expect(await store.getBroadcast({ plan: id, round: 1, attempt: 1 })).toBeInstanceOf(Uint8Array);

    for (const x of [1.5, 2.25, 10]) await client(id, x);
    const done1 = await roundIn(id, 1, 1, ['completed', 'failed']);
    expect(done1).toMatchObject({ phase: 'completed', reported: 3, accumulated: 3, aggregated_clients: 3 });
    expect(done1.output).toEqual({ sum: 13.75, count: 3 });
    expect(await roundsDone(id)).toBe(1);
    const r2 = await roundIn(id, 2, 1, ['selecting']);
    expect(r2.assigned).toBe(0);
    expect((await store.getPlan(id))!).toMatchObject({ round: 2, attempt: 1, status: 'active' });
    // Finalize again: idempotent, changes nothing.
    await engine.finalize({ plan: id, round: 1, attempt: 1 });
    expect((await store.getRound({ plan: id, round: 1, attempt: 1 }))!.output).toEqual({
      sum: 13.75,
      count: 3,
    });

    for (const x of [0.5, 0.25, 4]) await client(id, x);
    const done2 = await roundIn(id, 2, 1, ['completed', 'failed']);
    expect(done2.output).toEqual({ sum: 4.75, count: 3 });
    expect(await roundsDone(id)).toBe(2);
    await eventually('the plan to complete', async () =>
      (await store.getPlan(id))!.status === 'completed' ? true : undefined,
    );
    expect(await store.getRound({ plan: id, round: 3, attempt: 1 })).toBeUndefined();
  });

  test('a round below min_clients_in_aggregate fails, releases nothing and reopens as attempt 2', async () => {
    const { id } = await engine.submitPlan(
      planWith({
        rounds: 1,
        target_clients: 3,
        over_selection: 1,
        min_reports: 2,
        selection_timeout_s: 60,
        reporting_deadline_s: 60,
      }),
    );
    // Two uploads the API would have refused (NaN) reach the worker, which rejects them: one client is left.
    await client(id, 7);
    await client(id, NaN);
    await client(id, NaN);
    const failed = await roundIn(id, 1, 1, ['completed', 'failed']);
    expect(failed.phase).toBe('failed');
    expect(failed.output).toBeUndefined();
    expect(failed.error).toMatch(/min_clients_in_aggregate/);
    expect(failed).toMatchObject({ reported: 3, rejected: 2 });
    const reopened = await roundIn(id, 1, 2, ['selecting']);
    expect(reopened.assigned).toBe(0);
    expect((await store.getPlan(id))!).toMatchObject({ round: 1, attempt: 2 });
    expect(await roundsDone(id)).toBe(0);

    for (const x of [1, 2, 3]) await client(id, x);
    const done = await roundIn(id, 1, 2, ['completed', 'failed']);
    expect(done.output).toEqual({ sum: 6, count: 3 });
  });

  test('duplicate deliveries of an accumulate job are counted once', async () => {
    const { id } = await engine.submitPlan(
      planWith({
        rounds: 1,
        target_clients: 3,
        over_selection: 1,
        min_reports: 3,
        // Commits at once (no holding below the minimum), so that duplicates meet a committed partial.
        min_clients_in_aggregate: 1,
        selection_timeout_s: 60,
        reporting_deadline_s: 60,
      }),
    );
    const a = await client(id, 1);
    const b = await client(id, 2);
    // Delivered again while the first may still be in flight (another id, as after a redelivery), and again
    // after it was accumulated (the job was removed, so the same id is queued anew).
    const data = { ...a.ref, task: a.task };
    await jobs.queue.add('accumulate', data, { jobId: `dup1-${a.task}`, removeOnComplete: true });
    await jobs.queue.add('accumulate', data, { jobId: `dup2-${a.task}`, removeOnComplete: true });
    await eventually('two uploads accumulated', async () =>
      (await store.getRound(a.ref))!.accumulated === 2 ? true : undefined,
    );
    await jobs.accumulate(a.ref, a.task);
    await jobs.accumulate(b.ref, b.task);
    await eventually('the duplicates to be processed', async () => {
      const left = await Promise.all(
        [
          accumulateJobId(a.ref, a.task),
          accumulateJobId(b.ref, b.task),
          `dup1-${a.task}`,
          `dup2-${a.task}`,
        ].map((j) => jobs.queue.getJob(j)),
      );
      return left.every((j) => !j) ? true : undefined;
    });
    expect((await store.getRound(a.ref))!.accumulated).toBe(2);

    await client(id, 4);
    const done = await roundIn(id, 1, 1, ['completed', 'failed']);
    expect(done).toMatchObject({ phase: 'completed', aggregated_clients: 3, accumulated: 3 });
    expect(done.output).toEqual({ sum: 7, count: 3 });
  });

  test('deadlines: too few reports fails and reopens; enough reports closes and completes', async () => {
    const schedule = {
      rounds: 1,
      target_clients: 3,
      over_selection: 1,
      min_reports: 2,
      selection_timeout_s: 0.3,
      reporting_deadline_s: 0.8,
    };
    const { id } = await engine.submitPlan(planWith(schedule));
    const t1 = await assign(id);
    await assign(id);
    await upload(t1, await uploadBytes(id, 5));
    // Selection timeout with 2 >= min_reports assigned: reporting; then the deadline with 1 report: failed.
    await roundIn(id, 1, 1, ['reporting', 'failed']);
    const failed = await roundIn(id, 1, 1, ['failed', 'completed']);
    expect(failed.phase).toBe('failed');
    expect(failed.error).toMatch(/reporting deadline/);
    expect(failed.output).toBeUndefined();
    const second = await roundIn(id, 1, 2, ['selecting', 'reporting', 'failed']);
    expect(second.opened_at).toBeGreaterThanOrEqual(failed.finished_at!);

    // Another plan: two of three report by the deadline, which closes the round with what it has.
    const other = await engine.submitPlan(planWith(schedule));
    const u1 = await assign(other.id);
    const u2 = await assign(other.id);
    await upload(u1, await uploadBytes(other.id, 1.25));
    await upload(u2, await uploadBytes(other.id, 2));
    const done = await roundIn(other.id, 1, 1, ['completed', 'failed']);
    expect(done).toMatchObject({ phase: 'completed', reported: 2, aggregated_clients: 2 });
    expect(done.output).toEqual({ sum: 3.25, count: 2 });
    expect((await store.getPlan(other.id))!.status).toBe('completed');

    // The first plan keeps failing selection timeouts with nobody checking in; stop it.
    await store.setStatus(id, 'cancelled');
  });

  test('the selection timeout with fewer than min_reports assigned fails the attempt', async () => {
    const { id } = await engine.submitPlan(
      planWith({
        rounds: 1,
        target_clients: 2,
        over_selection: 1,
        min_reports: 2,
        selection_timeout_s: 0.2,
        reporting_deadline_s: 30,
      }),
    );
    await assign(id);
    const failed = await roundIn(id, 1, 1, ['failed', 'completed']);
    expect(failed.error).toMatch(/selection timeout/);
    await roundIn(id, 1, 2, ['selecting', 'failed']);
    await store.setStatus(id, 'cancelled');
  });

  test('a deadline job of an attempt that moved on does nothing', async () => {
    const { id } = await engine.submitPlan(
      planWith({
        rounds: 1,
        target_clients: 2,
        over_selection: 1,
        min_reports: 2,
        selection_timeout_s: 60,
        reporting_deadline_s: 60,
      }),
    );
    await client(id, 1);
    await client(id, 2);
    await roundIn(id, 1, 1, ['completed']);
    await engine.onDeadline({ plan: id, round: 1, attempt: 1 }, 'reporting');
    await engine.onDeadline({ plan: id, round: 1, attempt: 1 }, 'selection');
    const info = (await store.getRound({ plan: id, round: 1, attempt: 1 }))!;
    expect(info.phase).toBe('completed');
    expect(await store.getRound({ plan: id, round: 1, attempt: 2 })).toBeUndefined();
  });

  test('two workers hold uploads below the minimum uncommitted, and both commit when the round closes', async () => {
    const second = new AggregationWorker({
      connection: secondRedis,
      store,
      engine,
      plans,
      evaluator,
      config,
      log,
      id: 'w-second',
    });
    await second.start();
    try {
      const { id } = await engine.submitPlan(
        planWith({
          rounds: 1,
          target_clients: 4,
          over_selection: 1,
          min_reports: 4,
          min_clients_in_aggregate: 4,
          selection_timeout_s: 60,
          reporting_deadline_s: 60,
        }),
      );
      const ref = { plan: id, round: 1, attempt: 1 };
      for (const x of [1, 2, 4]) await client(id, x);
      // Both workers fetch and fold, but below 4 clients nothing is committed while the round is open.
      await eventually('the uploads to be held', async () => {
        const hash = await storeRedis.hgetall(`${prefix}:{${id}}:r:1.1`);
        const held = Object.entries(hash).filter(([k]) => k.startsWith('held:'));
        return held.reduce((n, [, v]) => n + Number(v), 0) === 3 ? true : undefined;
      });
      expect((await store.getRound(ref))!.accumulated).toBe(0);
      expect(await store.getPartials(ref)).toEqual([]);
      expect(await storeRedis.keys(`${prefix}:{${id}}:*:partial:*`)).toEqual([]);

      await client(id, 8);
      const done = await roundIn(id, 1, 1, ['completed', 'failed']);
      expect(done).toMatchObject({ phase: 'completed', accumulated: 4, aggregated_clients: 4 });
      expect(done.output).toEqual({ sum: 15, count: 4 });
    } finally {
      await second.close();
    }
  });

  test('leaves no tensors behind once the worker has closed', async () => {
    await worker.close();
    // In this thread: only the test's own decoding (roundsDone) touches TensorFlow.js here.
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    // In the isolates, where the plans ran (initialize, materials, fold, finalize): between tasks an
    // isolate holds no tensor, so every one leaked by a task would show.
    const counts = await evaluator.tensorCounts();
    expect(counts.length).toBeGreaterThan(0);
    expect(counts).toEqual(counts.map(() => 0));
  });
});
