/**
 * The worker's commit-conflict path, deterministically: two AggregationWorker instances (real BullMQ, the
 * local Redis, real isolates from dist/: `npm run build` first) and an order of events the test imposes.
 * Worker A folds four uploads and is held at its commit; the lock of one of its jobs lapses (the test
 * deletes it, as a lock lapses when A's process stalls), so the job goes back to the queue, worker B
 * folds that upload and commits it first; then A's commit goes ahead, finds that task covered, drops it
 * and redoes the other three. The round must end with each upload counted once.
 */
import { Redis } from 'ioredis';
import sumPlan from '../fixtures/sum-plan.json';
import { accumulateJobId, BullJobs } from '../../src/aggregation/jobs';
import { AggregationWorker } from '../../src/aggregation/worker';
import { bundleLeaves, writeBundle } from '../../src/codec';
import { loadConfig, type Config } from '../../src/config';
import { IsolatePool } from '../../src/isolate/isolate-pool';
import { createLogger } from '../../src/log/logger';
import { RoundEngine } from '../../src/rounds/engine';
import { StorePlanCache } from '../../src/rounds/plan-cache';
import { newTaskId } from '../../src/store/ids';
import { RedisRoundStore } from '../../src/store/redis-round-store';
import type { CommitResult, RoundRef, RoundStore } from '../../src/store/types';

const prefix = `rh-conflict-${process.pid}-${Date.now()}`;
const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const base = loadConfig({}, { redisPrefix: prefix, workerBatch: 4, workerBatchWaitMs: 50 });
// A's locks outlast any pause of this loaded process by far (renewed every 10 s); B looks for stalled jobs
// every second, so the one lock the test deletes is found lapsed within two seconds.
const configA: Config = { ...base, workerLockMs: 30_000 };
const configB: Config = { ...base, workerLockMs: 1000 };
const connect = (nullRetries = false) =>
  new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: nullRetries ? null : 1 });
const storeRedis = connect();
const jobsRedis = connect(true);
const redisA = connect(true);
const redisB = connect(true);
const store = new RedisRoundStore(storeRedis, prefix);
const jobs = new BullJobs(jobsRedis, prefix);
const plans = new StorePlanCache(store, base.limits);
const evaluator = new IsolatePool({ config: base.isolates, limits: base.limits, log });
const engine = new RoundEngine({ store, jobs, plans, evaluator, config: base, log });

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Worker A's commits, held at the first until the test opens the gate. */
const gate = deferred();
const atGate = deferred<readonly string[]>();
const commitsA: { tasks: readonly string[]; result: CommitResult }[] = [];
const commitsB: { tasks: readonly string[]; result: CommitResult }[] = [];

function recording(
  commits: typeof commitsA,
  held?: { atGate: typeof atGate; gate: typeof gate },
): RoundStore {
  let first = true;
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'commitPartial') {
        // Every argument is passed on (the extras carry the lease epoch the commit is fenced by).
        return async (...args: Parameters<RoundStore['commitPartial']>) => {
          const tasks = args[3];
          if (held && first) {
            first = false;
            held.atGate.resolve([...tasks]);
            await held.gate.promise;
          }
          const result = await store.commitPartial(...args);
          commits.push({ tasks: [...tasks], result });
          return result;
        };
      }
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

const workerA = new AggregationWorker({
  connection: redisA,
  store: recording(commitsA, { atGate, gate }),
  engine,
  plans,
  evaluator,
  config: configA,
  log,
  id: 'w-a',
});
const workerB = new AggregationWorker({
  connection: redisB,
  store: recording(commitsB),
  engine,
  plans,
  evaluator,
  config: configB,
  log,
  id: 'w-b',
});

async function eventually<T>(what: string, check: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

afterAll(async () => {
  gate.resolve();
  await Promise.all([workerA.close(), workerB.close()]);
  await evaluator.close();
  await jobs.queue.obliterate({ force: true });
  await jobs.close();
  await store.clear();
  await Promise.all([storeRedis, jobsRedis, redisA, redisB].map((r) => r.quit()));
});

test('a task another worker committed first is dropped from a commit, the rest redone, each counted once', async () => {
  const values = [1.5, 2.25, 4, 8.125];
  const { id } = await engine.submitPlan({
    ...sumPlan,
    schedule: {
      rounds: 1,
      target_clients: values.length,
      over_selection: 1,
      min_reports: values.length,
      min_clients_in_aggregate: 1,
      selection_timeout_s: 120,
      reporting_deadline_s: 120,
    },
  });
  const ref: RoundRef = { plan: id, round: 1, attempt: 1 };
  const [leaf] = bundleLeaves((await plans.get(id))!.uploadType);
  for (const v of values) {
    const a = await store.tryAssign(id, newTaskId(), Date.now(), newTaskId());
    if (!a.ok) throw new Error(`no task: ${a.reason}`);
    const bytes = writeBundle([{ name: leaf!.name, dtype: 'float32', shape: [], data: Float32Array.of(v) }]);
    const res = await store.acceptUpload(a.ref, a.task, bytes, Date.now(), 64);
    if (!res.ok) throw new Error(`upload refused: ${res.code}`);
    await jobs.accumulate(a.ref, a.task);
  }

  // A alone takes the four jobs, folds them and stops at its commit.
  await workerA.start();
  const tasks = await atGate.promise;
  expect(tasks).toHaveLength(values.length);
  const taken = tasks[tasks.length - 1]!;

  // The lock of one of A's jobs lapses; B finds it stalled, takes it, folds it and commits it. BullMQ runs
  // one stalled check per queue per interval, timed by a key that A's start set for A's 30 s: it goes too,
  // so that B's checks run at B's interval. A's other jobs keep their locks, and stay A's.
  expect(await jobsRedis.del(`${jobs.queue.toKey(accumulateJobId(ref, taken))}:lock`)).toBe(1);
  await jobsRedis.del(jobs.queue.toKey('stalled-check'));
  await workerB.start();
  await eventually('B to commit the taken task', async () =>
    commitsB.some((c) => c.result.ok && c.tasks.includes(taken)) ? true : undefined,
  );
  expect((await store.queuedUploads(ref, [taken]))[0]!.covered).toBe(true);

  // A commits: the taken task conflicts; A drops it and commits the other three.
  gate.resolve();
  const info = await eventually('the round to complete', async () => {
    const r = await store.getRound(ref);
    return r && (r.phase === 'completed' || r.phase === 'failed') ? r : undefined;
  });
  expect(commitsA[0]).toEqual({ tasks, result: { ok: false, conflicts: [taken] } });
  expect(commitsA.slice(1).map((c) => c.result.ok)).toEqual([true]);
  expect([...commitsA[1]!.tasks].sort()).toEqual(tasks.slice(0, -1).sort());
  expect(commitsB.filter((c) => c.result.ok).map((c) => c.tasks)).toEqual([[taken]]);
  expect(info).toMatchObject({ phase: 'completed', reported: 4, accumulated: 4, aggregated_clients: 4 });
  expect(info.output).toEqual({ sum: values.reduce((a, b) => a + b, 0), count: values.length });
}, 120_000);
