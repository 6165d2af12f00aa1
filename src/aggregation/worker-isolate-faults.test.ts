import { Writable } from 'node:stream';
import { QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import pino from 'pino';
import sumPlan from '../../test/fixtures/sum-plan.json';
import { bundleLeaves, writeBundle } from '../codec';
import { loadConfig } from '../config';
import { IsolatePool } from '../isolate/isolate-pool';
import { RoundEngine, planRef } from '../rounds/engine';
import { StorePlanCache } from '../rounds/plan-cache';
import { newTaskId } from '../store/ids';
import { RedisRoundStore } from '../store/redis-round-store';
import type { RoundInfo, RoundRef } from '../store/types';
import { BullJobs, QUEUE_NAME, queuePrefix } from './jobs';
import { WorkerIdTaken, WorkerLease } from './lease';
import { AggregationWorker } from './worker';

// Fault classes and worker leases against the local Redis, BullMQ and real isolates (worker threads of
// dist/: `npm run build` first), with test fault injection on: a plan named `fault-<kind>-<task>[-once]`
// breaks its isolate in that task (every time, or the first time only). Job locks and the worker's lease
// last 1.5 s here, so that a lapse would show within a test.
const prefix = `rh-worker-isolate-faults-${process.pid}-${Date.now()}`;
const base = loadConfig({});
const config = loadConfig(
  {},
  {
    redisPrefix: prefix,
    workerBatch: 4,
    workerBatchWaitMs: 20,
    workerLockMs: 1500,
    evalFaultRetries: 3,
    isolates: { ...base.isolates, poolSize: 2, timeoutMs: 20_000, testFaults: true },
  },
);
const lines: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
const log = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
      done();
    },
  }),
);
const storeRedis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 });
const jobsRedis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
const workerRedis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
const eventsRedis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
const store = new RedisRoundStore(storeRedis, prefix);
const jobs = new BullJobs(jobsRedis, prefix);
const plans = new StorePlanCache(store, config.limits);
const evaluator = new IsolatePool({ config: config.isolates, limits: config.limits, log });
const engine = new RoundEngine({ store, jobs, plans, evaluator, config, log });
const events = new QueueEvents(QUEUE_NAME, { connection: eventsRedis, prefix: queuePrefix(prefix) });
const stalled: string[] = [];
events.on('stalled', ({ jobId }) => stalled.push(jobId));
const WORKER = 'w-isolate-faults';

let worker: AggregationWorker;
beforeAll(async () => {
  await events.waitUntilReady();
  worker = new AggregationWorker({
    connection: workerRedis,
    store,
    engine,
    plans,
    evaluator,
    config,
    log,
    id: WORKER,
  });
  await worker.start();
});

afterAll(async () => {
  await worker?.close();
  await events.close();
  await evaluator.close();
  await jobs.queue.obliterate({ force: true });
  await jobs.close();
  await store.clear();
  const keys = await storeRedis.keys(`${prefix}:*`);
  if (keys.length) await storeRedis.del(...keys);
  await Promise.all([storeRedis.quit(), jobsRedis.quit(), workerRedis.quit(), eventsRedis.quit()]);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(what: string, check: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Submits the sum plan under `name` for one round of `clients` clients. */
async function submit(name: string, clients: number): Promise<RoundRef> {
  const { id } = await engine.submitPlan({
    ...sumPlan,
    name,
    schedule: {
      rounds: 1,
      target_clients: clients,
      over_selection: 1,
      min_reports: clients,
      min_clients_in_aggregate: 1,
      selection_timeout_s: 120,
      reporting_deadline_s: 120,
    },
  });
  return { plan: id, round: 1, attempt: 1 };
}

/** One client of the attempt uploads `x` (accepted, 202) and its accumulate job is queued; its task. */
async function client(
  ref: RoundRef,
  x: number,
  enqueue = true,
): Promise<{ task: string; bytes: Uint8Array }> {
  const a = await store.tryAssign(ref.plan, newTaskId(), Date.now(), newTaskId());
  if (!a.ok) throw new Error(`no task: ${a.reason}`);
  const [leaf] = bundleLeaves((await plans.get(ref.plan))!.uploadType);
  const bytes = writeBundle([{ name: leaf!.name, dtype: 'float32', shape: [], data: Float32Array.of(x) }]);
  const res = await store.acceptUpload(a.ref, a.task, bytes, Date.now(), 64);
  if (!res.ok) throw new Error(`upload refused: ${res.code}`);
  if (enqueue) await jobs.accumulate(a.ref, a.task);
  return { task: a.task, bytes };
}

const finished = (ref: RoundRef) =>
  eventually(`${ref.plan} ${ref.round}.${ref.attempt} to finish`, async () => {
    const info = await store.getRound(ref);
    return info && (info.phase === 'completed' || info.phase === 'failed') ? info : undefined;
  });
const roundHash = (ref: RoundRef) =>
  storeRedis.hgetall(`${prefix}:{${ref.plan}}:r:${ref.round}.${ref.attempt}`);

test('an isolate crash while folding is retried: no upload is rejected, and the aggregate is exact', async () => {
  const ref = await submit('fault-crash-fold-once', 2);
  await client(ref, 1.5);
  await client(ref, 2.25);
  const done: RoundInfo = await finished(ref);
  expect(done).toMatchObject({ phase: 'completed', rejected: 0, accumulated: 2, aggregated_clients: 2 });
  expect(done.output).toEqual({ sum: 3.75, count: 2 });
  expect((await roundHash(ref)).faults).toBe('1');
}, 120_000);

test('a transient fault in finalize does not fail the round: finalize is retried with the partials kept', async () => {
  const ref = await submit('fault-crash-finalize-once', 2);
  await client(ref, 4);
  await client(ref, 0.5);
  const done = await finished(ref);
  expect(done).toMatchObject({ phase: 'completed', attempt: 1, aggregated_clients: 2 });
  expect(done.output).toEqual({ sum: 4.5, count: 2 });
  expect((await roundHash(ref)).faults).toBe('1');
}, 120_000);

test('a fold that faults every time fails the attempt after EVAL_FAULT_RETRIES faults, with the reason', async () => {
  const ref = await submit('fault-crash-fold', 2);
  await client(ref, 1);
  const failed = await finished(ref);
  expect(failed.phase).toBe('failed');
  expect(failed.error).toBe(
    'fold: the isolate exited (code 70) (3 faults in this attempt; EVAL_FAULT_RETRIES 3)',
  );
  expect((await roundHash(ref)).faults).toBe('3');
  // Nothing was blamed on the client, and the next attempt opened.
  expect(failed.rejected).toBe(0);
  await eventually('the next attempt to open', async () =>
    (await store.getRound({ ...ref, attempt: 2 }))?.phase === 'selecting' ? true : undefined,
  );
  await store.setStatus(ref.plan, 'cancelled');
  await engine.onStatusChange(ref.plan, 'cancelled');
}, 120_000);

test('a fold slower than the job locks and the lease keeps both held: no job is redelivered', async () => {
  const ref = await submit('fault-slow-fold', 2);
  const leaseKey = `${prefix}:worker:{${WORKER}}`;
  const token = await storeRedis.get(leaseKey);
  expect(token).not.toBeNull();
  const before = lines.length;
  const stalledBefore = stalled.length;
  await client(ref, 3);
  await client(ref, 5);
  // Each fold takes 5 s (over 3 lock and lease durations); the lease must never lapse meanwhile.
  const tokens = new Set<string | null>();
  let done: RoundInfo | undefined;
  while (!done) {
    tokens.add(await storeRedis.get(leaseKey));
    const info = await store.getRound(ref);
    if (info?.phase === 'completed' || info?.phase === 'failed') done = info;
    else await sleep(100);
  }
  expect(done).toMatchObject({ phase: 'completed', aggregated_clients: 2, output: { sum: 8, count: 2 } });
  expect([...tokens]).toEqual([token]);
  expect(stalled.slice(stalledBefore)).toEqual([]);
  const after = lines.slice(before).map((l) => l.msg);
  expect(after).not.toContain('redelivered upload already covered; acknowledged');
  expect(after).not.toContain('could not acknowledge a job');
  expect(after).not.toContain(
    'worker lease lost; handing the jobs in hand back and committing nothing until it is held again',
  );
}, 120_000);

test('a redelivered job whose upload is covered is acknowledged with one info line', async () => {
  const ref = await submit('covered-redelivery', 2);
  const first = await client(ref, 7, false);
  // An earlier delivery committed it (as a worker that died between commit and acknowledgement leaves it).
  const info = (await store.getRound(ref))!;
  const folded = await evaluator.fold(planRef((await plans.get(ref.plan))!), {
    round: 1,
    secureParams: info.secure_params,
    partial: undefined,
    uploads: [{ task: first.task, bytes: first.bytes }],
  });
  expect((await store.commitPartial(ref, 'w-earlier', folded.partial, [first.task])).ok).toBe(true);
  await jobs.accumulate(ref, first.task);
  const line = await eventually('the covered line', () =>
    Promise.resolve(lines.find((l) => l.msg === 'redelivered upload already covered; acknowledged')),
  );
  expect(line).toMatchObject({ level: 30, plan: ref.plan, round: '1.1', task: first.task });
  await client(ref, 1);
  const done = await finished(ref);
  expect(done).toMatchObject({ phase: 'completed', accumulated: 2, output: { sum: 8, count: 2 } });
}, 120_000);

test('a second worker given a live worker id refuses to start', async () => {
  const second = new AggregationWorker({
    connection: workerRedis,
    store,
    engine,
    plans,
    evaluator,
    config,
    log,
    id: WORKER,
  });
  await expect(second.start()).rejects.toThrow(WorkerIdTaken);
  await second.close();
});

test('a worker whose lease was taken over commits nothing and hands its jobs back, then resumes once it holds the id', async () => {
  const ref = await submit('lease-takeover', 2);
  const leaseKey = `${prefix}:worker:{${WORKER}}`;
  // Another process takes the id (the worker's lease lapsed, as when it is paused past it).
  await storeRedis.del(leaseKey);
  const other = new WorkerLease(storeRedis, prefix, WORKER, 60_000, log);
  // Only what is logged from here on: an earlier test's stand-down must not pass for this one's.
  const from = lines.length;
  await other.acquire();
  // It notices at its next renewal, and stands down once its fetch in flight returns (a blocking fetch
  // waits up to 10 s while delayed jobs, the deadlines, exist).
  await eventually('the worker to stand down', () =>
    Promise.resolve(
      lines
        .slice(from)
        .find(
          (l) =>
            l.msg ===
            'worker lease lost; handing the jobs in hand back and committing nothing until it is held again',
        ),
    ),
  );
  await client(ref, 2);
  await client(ref, 3);
  // Standing down, it takes no job: the uploads wait in the queue, nothing is committed under the id.
  await sleep(2500);
  expect(await store.getRound(ref)).toMatchObject({ phase: 'closed', accumulated: 0 });
  expect(await jobs.queue.getWaitingCount()).toBe(2);
  await other.release();
  const done = await finished(ref);
  expect(done).toMatchObject({ phase: 'completed', aggregated_clients: 2, output: { sum: 5, count: 2 } });
  expect(Number((await roundHash(ref))[`epoch:${WORKER}`])).toBe(other.epoch + 1);
}, 120_000);
