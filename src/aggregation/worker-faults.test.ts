import { Redis } from 'ioredis';
import sumPlan from '../../test/fixtures/sum-plan.json';
import { bundleLeaves, writeBundle } from '../codec';
import { loadConfig } from '../config';
import { IsolatePool } from '../isolate/isolate-pool';
import { createLogger } from '../log/logger';
import { RoundEngine, planRef } from '../rounds/engine';
import { StorePlanCache } from '../rounds/plan-cache';
import { newTaskId } from '../store/ids';
import { RedisRoundStore } from '../store/redis-round-store';
import type { CommitExtras, RoundRef, RoundStore } from '../store/types';
import { BullJobs } from './jobs';
import { AggregationWorker } from './worker';

// Failures in the middle of the hold/commit logic, against the local Redis, BullMQ and real isolates
// (worker threads of dist/: `npm run build` first). A store wrapper injects the failure.
const prefix = `rh-worker-faults-${process.pid}-${Date.now()}`;
const config = loadConfig({}, { redisPrefix: prefix, workerBatch: 4, workerBatchWaitMs: 20 });
const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const storeRedis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 });
const jobsRedis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
const workerRedis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
const store = new RedisRoundStore(storeRedis, prefix);
const jobs = new BullJobs(jobsRedis, prefix);
const plans = new StorePlanCache(store, config.limits);
const evaluator = new IsolatePool({ config: config.isolates, limits: config.limits, log });
const engine = new RoundEngine({ store, jobs, plans, evaluator, config, log });

/** What the injected failure does, armed by the test. */
const fault = { conflictOnce: false, failNextGetRound: false, commits: 0 };

/**
 * The store as the worker sees it. Armed, the next commit first finds the batch's last task committed by
 * another worker (`w-other`, a real commit of a real partial), so that the worker's commit conflicts and
 * it redoes the rest of the batch; the redo's first read of the round then fails, as a Redis blip would.
 */
const faulty: RoundStore = new Proxy(store, {
  get(target, prop, receiver) {
    if (prop === 'commitPartial') {
      return async (
        ref: RoundRef,
        worker: string,
        partial: Uint8Array,
        tasks: string[],
        rejected = 0,
        extras: CommitExtras = {},
      ) => {
        fault.commits += 1;
        if (fault.conflictOnce) {
          fault.conflictOnce = false;
          const task = tasks[tasks.length - 1]!;
          const info = (await store.getRound(ref))!;
          const loaded = (await plans.get(ref.plan))!;
          const other = await evaluator.fold(planRef(loaded), {
            round: ref.round,
            secureParams: info.secure_params,
            partial: undefined,
            uploads: [{ task, bytes: await store.getUpload(ref, task) }],
          });
          expect((await store.commitPartial(ref, 'w-other', other.partial, [task])).ok).toBe(true);
          fault.failNextGetRound = true;
        }
        return store.commitPartial(ref, worker, partial, tasks, rejected, extras);
      };
    }
    if (prop === 'getRound') {
      return async (ref: RoundRef) => {
        if (fault.failNextGetRound) {
          fault.failNextGetRound = false;
          throw new Error('injected: Redis blip');
        }
        return store.getRound(ref);
      };
    }
    const v: unknown = Reflect.get(target, prop, receiver);
    return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
  },
});

async function eventually<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function client(plan: string, sum: number): Promise<void> {
  const a = await store.tryAssign(plan, newTaskId(), Date.now(), newTaskId());
  if (!a.ok) throw new Error(`no task: ${a.reason}`);
  const [leaf] = bundleLeaves((await plans.get(plan))!.uploadType);
  const bytes = writeBundle([{ name: leaf!.name, dtype: 'float32', shape: [], data: Float32Array.of(sum) }]);
  const res = await store.acceptUpload(a.ref, a.task, bytes, Date.now(), 64);
  if (!res.ok) throw new Error(`upload refused: ${res.code}`);
  await jobs.accumulate(a.ref, a.task);
}

let worker: AggregationWorker;

beforeAll(async () => {
  worker = new AggregationWorker({
    connection: workerRedis,
    store: faulty,
    engine,
    plans,
    evaluator,
    config,
    log,
  });
  await worker.start();
});

afterAll(async () => {
  await worker?.close();
  await evaluator.close();
  await jobs.queue.obliterate({ force: true });
  await jobs.close();
  await store.clear();
  await Promise.all([storeRedis.quit(), jobsRedis.quit(), workerRedis.quit()]);
});

test('a failure in the redo after a commit conflict hands the jobs held from earlier batches back', async () => {
  const { id } = await engine.submitPlan({
    ...sumPlan,
    schedule: {
      rounds: 1,
      target_clients: 2,
      over_selection: 1,
      min_reports: 2,
      min_clients_in_aggregate: 2,
      selection_timeout_s: 60,
      reporting_deadline_s: 60,
    },
  });
  const ref = { plan: id, round: 1, attempt: 1 };
  const roundKey = `${prefix}:{${id}}:r:1.1`;
  // The first upload is folded and held (1 < 2 clients, the attempt open): a batch of its own.
  await client(id, 1.5);
  await eventually('the first upload to be held', async () =>
    (await storeRedis.hget(roundKey, 'held_total')) === '1' ? true : undefined,
  );
  // The second closes the attempt; the worker commits both, which conflicts on the second (committed by
  // w-other), and the redo of the first (held from the earlier batch) fails.
  fault.conflictOnce = true;
  await client(id, 2.25);
  const done = await eventually('the round to complete', async () => {
    const info = await store.getRound(ref);
    return info && (info.phase === 'completed' || info.phase === 'failed') ? info : undefined;
  });
  expect(fault.commits).toBeGreaterThanOrEqual(2);
  expect(done).toMatchObject({ phase: 'completed', reported: 2, accumulated: 2, aggregated_clients: 2 });
  expect(done.output).toEqual({ sum: 3.75, count: 2 });
  expect(Number((await storeRedis.hget(roundKey, 'held_total')) ?? 0)).toBe(0);
});
