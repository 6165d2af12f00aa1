import { Redis } from 'ioredis';
import sumPlan from '../../test/fixtures/sum-plan.json';
import { BullJobs, deadlineJobId, finalizeJobId } from '../aggregation/jobs';
import { AggregationWorker } from '../aggregation/worker';
import { bundleLeaves, writeBundle } from '../codec';
import { loadConfig } from '../config';
import type { FinalizeTask, PlanEvaluator, PlanRef, RoundMaterials } from '../isolate/contract';
import { LocalEvaluator } from '../isolate/local-evaluator';
import { createLogger } from '../log/logger';
import { newTaskId } from '../store/ids';
import { RedisRoundStore } from '../store/redis-round-store';
import type { RoundInfo, RoundRef, RoundStore } from '../store/types';
import { RoundEngine } from './engine';
import { StorePlanCache } from './plan-cache';
import { Reconciler } from './reconciler';

// Engines, the Redis store and BullMQ on prefixes of their own, with plan code in this thread
// (LocalEvaluator) behind an evaluator whose steps a test can break (as a lost backend would) or hold.
const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const connections: Redis[] = [];
const cleanups: (() => Promise<void>)[] = [];

function connect(forBull = false): Redis {
  const r = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: forBull ? null : 1 });
  connections.push(r);
  return r;
}

/** An infrastructure fault as far as the engine can tell: not an AppError, so never a plan fault. */
class BackendDown extends Error {}

/** The LocalEvaluator, with `materials` and `finalize` that throw while broken and a hold on finalize. */
class FlakyEvaluator implements PlanEvaluator {
  readonly broken = { materials: false, finalize: false };
  /** While set, finalize calls `arrived` and waits for `release` before computing. */
  hold: { arrived: () => void; release: Promise<void> } | undefined;
  private readonly inner: LocalEvaluator;

  constructor(limits: ConstructorParameters<typeof LocalEvaluator>[0]) {
    this.inner = new LocalEvaluator(limits);
  }
  initialize(plan: PlanRef) {
    return this.inner.initialize(plan);
  }
  async materials(plan: PlanRef, state: Uint8Array, round: number): Promise<RoundMaterials> {
    if (this.broken.materials) throw new BackendDown('injected: materials backend down');
    return this.inner.materials(plan, state, round);
  }
  fold(...args: Parameters<PlanEvaluator['fold']>) {
    return this.inner.fold(...args);
  }
  async finalize(plan: PlanRef, task: FinalizeTask) {
    if (this.broken.finalize) throw new BackendDown('injected: finalize backend down');
    const hold = this.hold;
    if (hold) {
      hold.arrived();
      await hold.release;
    }
    return this.inner.finalize(plan, task);
  }
  ready() {
    return this.inner.ready();
  }
  close() {
    return this.inner.close();
  }
}

/** A store, a queue, an engine (optionally over another store view) and, with `worker`, a worker. */
async function environment(name: string, opts: { worker: boolean }) {
  const prefix = `rh-reconciler-test-${process.pid}-${Date.now()}-${name}`;
  // SCHEDULE_MIN_SECONDS 0: some plans use short deadlines; the reconciler runs often to keep tests short.
  const config = loadConfig(
    { SCHEDULE_MIN_SECONDS: '0' },
    { redisPrefix: prefix, workerBatch: 4, workerBatchWaitMs: 20, reconcileIntervalMs: 300 },
  );
  const store = new RedisRoundStore(connect(), prefix);
  const jobs = new BullJobs(connect(true), prefix, log);
  const plans = new StorePlanCache(store, config.limits);
  const evaluator = new FlakyEvaluator(config.limits);
  const engineOver = (s: RoundStore) => new RoundEngine({ store: s, jobs, plans, evaluator, config, log });
  const engine = engineOver(store);
  let worker: AggregationWorker | undefined;
  if (opts.worker) {
    worker = new AggregationWorker({
      connection: connect(true),
      store,
      engine,
      plans,
      evaluator,
      config,
      log,
    });
    await worker.start();
  }
  cleanups.push(async () => {
    await worker?.close();
    await jobs.queue.obliterate({ force: true });
    await jobs.close();
    await store.clear();
  });

  const submit = async (schedule: Record<string, number>) =>
    (await engine.submitPlan({ ...sumPlan, schedule })).id;
  const assign = async (plan: string): Promise<{ ref: RoundRef; task: string }> => {
    const r = await store.tryAssign(plan, newTaskId(), Date.now(), newTaskId());
    if (!r.ok) throw new Error(`no task: ${r.reason}`);
    return { ref: r.ref, task: r.task };
  };
  const bytesOf = async (plan: string, sum: number) => {
    const [leaf] = bundleLeaves((await plans.get(plan))!.uploadType);
    return writeBundle([{ name: leaf!.name, dtype: 'float32', shape: [], data: Float32Array.of(sum) }]);
  };
  /** What the API does with an upload: record it, then queue its accumulation (and finalize). */
  const upload = async (t: { ref: RoundRef; task: string }, sum: number) => {
    const r = await store.acceptUpload(t.ref, t.task, await bytesOf(t.ref.plan, sum), Date.now(), 64);
    if (!r.ok) throw new Error(`upload refused: ${r.code}`);
    await jobs.accumulate(t.ref, t.task);
    if (r.closed) await jobs.finalize(t.ref);
  };
  const roundIn = (ref: RoundRef, phases: RoundInfo['phase'][], ms = 30_000) =>
    eventually(`round ${ref.round}.${ref.attempt} to be ${phases.join('/')}`, ms, async () => {
      const info = await store.getRound(ref);
      return info && phases.includes(info.phase) ? info : undefined;
    });
  /** Removes a job that waits for a retry, as if it had used up its attempts. */
  const loseJob = (id: string) =>
    eventually(`job ${id} to be removed`, 30_000, async () =>
      (await jobs.queue.remove(id)) === 1 ? true : undefined,
    );
  return {
    prefix,
    store,
    jobs,
    plans,
    evaluator,
    engine,
    engineOver,
    submit,
    assign,
    upload,
    roundIn,
    loseJob,
  };
}

async function eventually<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

afterAll(async () => {
  for (const c of cleanups) await c();
  await Promise.all(connections.map((c) => c.quit()));
});

const LONG = { selection_timeout_s: 60, reporting_deadline_s: 60 };

describe('with an aggregation worker (which runs the reconciler every 300 ms)', () => {
  let env: Awaited<ReturnType<typeof environment>>;
  beforeAll(async () => {
    env = await environment('worker', { worker: true });
  });

  test('a round left finalizing with its finalize job lost is finalized by the reconciler', async () => {
    const id = await env.submit({ rounds: 1, target_clients: 2, over_selection: 1, min_reports: 2, ...LONG });
    env.evaluator.broken.finalize = true;
    const a = await env.assign(id);
    const b = await env.assign(id);
    await env.upload(a, 1.5);
    await env.upload(b, 2);
    const ref = { plan: id, round: 1, attempt: 1 };
    // The finalizer began and threw (not a plan fault: the attempt stays finalizing); its job is then lost.
    await env.roundIn(ref, ['finalizing']);
    await env.loseJob(finalizeJobId(ref));
    env.evaluator.broken.finalize = false;

    const done = await env.roundIn(ref, ['completed', 'failed']);
    expect(done).toMatchObject({ phase: 'completed', aggregated_clients: 2 });
    expect(done.output).toEqual({ sum: 3.5, count: 2 });
  });

  test('a completed round whose next attempt did not open is followed by it', async () => {
    const id = await env.submit({ rounds: 2, target_clients: 2, over_selection: 1, min_reports: 2, ...LONG });
    env.evaluator.broken.materials = true;
    const ref = { plan: id, round: 1, attempt: 1 };
    await env.upload(await env.assign(id), 1);
    await env.upload(await env.assign(id), 2);
    await env.roundIn(ref, ['completed']);
    // Opening round 2 throws (the backend is down) and the finalize job that would retry it is lost.
    await env.loseJob(finalizeJobId(ref));
    expect(await env.store.getRound({ plan: id, round: 2, attempt: 1 })).toBeUndefined();
    env.evaluator.broken.materials = false;

    await env.roundIn({ plan: id, round: 2, attempt: 1 }, ['selecting']);
    expect(await env.store.getPlan(id)).toMatchObject({ round: 2, attempt: 1, status: 'active' });
  });

  test('cancelling a plan while its round finalizes releases nothing', async () => {
    const id = await env.submit({ rounds: 2, target_clients: 2, over_selection: 1, min_reports: 2, ...LONG });
    const state = await env.store.getState(id);
    let arrived!: () => void;
    const atFinalize = new Promise<void>((r) => (arrived = r));
    let release!: () => void;
    env.evaluator.hold = { arrived, release: new Promise<void>((r) => (release = r)) };
    const ref = { plan: id, round: 1, attempt: 1 };
    try {
      await env.upload(await env.assign(id), 1);
      await env.upload(await env.assign(id), 2);
      await atFinalize;
      expect((await env.store.getRound(ref))!.phase).toBe('finalizing');
      // The operator's cancel, as the route makes it.
      expect(await env.store.setStatus(id, 'cancelled')).toMatchObject({ status: 'cancelled' });
      await env.engine.onStatusChange(id, 'cancelled');
    } finally {
      env.evaluator.hold = undefined;
      release();
    }
    // The finalizer computes and tries to complete: refused, the attempt is no longer finalizing.
    await eventually('the finalize job to end', 30_000, async () =>
      (await env.jobs.queue.getJob(finalizeJobId(ref))) ? undefined : true,
    );
    const info = (await env.store.getRound(ref))!;
    expect(info).toMatchObject({ phase: 'failed', error: 'the plan was cancelled', aggregated_clients: 0 });
    expect(info.output).toBeUndefined();
    expect(await env.store.getState(id)).toEqual(state);
    expect(await env.store.getPlan(id)).toMatchObject({ status: 'cancelled', round: 1, attempt: 1 });
  });
});

describe('without a worker (engine and reconcilers called directly)', () => {
  let env: Awaited<ReturnType<typeof environment>>;
  beforeAll(async () => {
    env = await environment('direct', { worker: false });
  });

  test('an upload reaching the target while the engine decides a deadline does not fail the round', async () => {
    const id = await env.submit({ rounds: 1, target_clients: 3, over_selection: 1, min_reports: 2, ...LONG });
    const clients = [await env.assign(id), await env.assign(id), await env.assign(id)];
    await env.upload(clients[0]!, 1);
    const ref = clients[0]!.ref;
    const info = (await env.store.getRound(ref))!;
    // The other two uploads land once the engine has first touched the store for this deadline: after
    // any read it makes returns, before any decision it makes runs.
    let raced = false;
    const race = async () => {
      if (raced) return;
      raced = true;
      await env.upload(clients[1]!, 2);
      await env.upload(clients[2]!, 4);
    };
    const engine = env.engineOver(racing(env.store, race));
    await engine.onDeadline(ref, 'reporting', info.reporting_deadline! + 1);

    expect(raced).toBe(true);
    const after = (await env.store.getRound(ref))!;
    expect(after).toMatchObject({ phase: 'closed', reported: 3 });
    expect(after.error).toBeUndefined();
  });

  test('a pause moves the deadlines by its length, reschedules their jobs, and stale jobs do nothing', async () => {
    const id = await env.submit({
      rounds: 1,
      target_clients: 2,
      over_selection: 1,
      min_reports: 2,
      selection_timeout_s: 30,
      reporting_deadline_s: 60,
    });
    const ref = { plan: id, round: 1, attempt: 1 };
    const opened = (await env.store.getRound(ref))!;
    const t0 = opened.opened_at;
    // Paused 1 s after opening for 10 s, both before the selection timeout.
    await env.store.setStatus(id, 'paused', t0 + 1_000);
    await env.engine.onStatusChange(id, 'paused');
    await env.store.setStatus(id, 'active', t0 + 11_000);
    await env.engine.onStatusChange(id, 'active');

    const moved = (await env.store.getRound(ref))!;
    expect(moved.selection_deadline).toBe(opened.selection_deadline! + 10_000);
    expect(moved.reporting_deadline).toBe(opened.reporting_deadline! + 10_000);
    for (const kind of ['selection', 'reporting'] as const) {
      const job = await env.jobs.queue.getJob(deadlineJobId(ref, kind, moved[`${kind}_deadline`]!));
      expect(await job?.getState()).toBe('delayed');
    }
    // The jobs of the old deadlines fire: nothing is decided before the moved ones.
    await env.engine.onDeadline(ref, 'selection', opened.selection_deadline! + 1);
    await env.engine.onDeadline(ref, 'reporting', opened.reporting_deadline! + 1);
    expect((await env.store.getRound(ref))!.phase).toBe('selecting');
    await env.engine.onDeadline(ref, 'selection', moved.selection_deadline!);
    expect(await env.store.getRound(ref)).toMatchObject({ phase: 'failed' });
    await env.store.setStatus(id, 'cancelled');
  });

  test('two reconcilers at once drive each stuck plan forward exactly once', async () => {
    // Past its selection timeout with nobody assigned: fails, attempt 2 opens.
    const late = await env.submit({
      rounds: 1,
      target_clients: 2,
      over_selection: 1,
      min_reports: 2,
      ...LONG,
    });
    // Closed by its last upload, its finalize job lost: queued again.
    const closed = await env.submit({
      rounds: 1,
      target_clients: 2,
      over_selection: 1,
      min_reports: 2,
      ...LONG,
    });
    const closedRef = { plan: closed, round: 1, attempt: 1 };
    await env.upload(await env.assign(closed), 1);
    await env.upload(await env.assign(closed), 2);
    await env.loseJob(finalizeJobId(closedRef));
    // Completed, round 2 never opened (the finalizer died in between).
    const completed = await env.submit({
      rounds: 2,
      target_clients: 1,
      over_selection: 1,
      min_reports: 1,
      ...LONG,
    });
    const completedRef = { plan: completed, round: 1, attempt: 1 };
    const t = await env.assign(completed);
    await env.store.acceptUpload(t.ref, t.task, new Uint8Array([1]), Date.now(), 64);
    await env.store.commitPartial(completedRef, 'w', new Uint8Array([1]), [t.task]);
    await env.store.beginFinalize(completedRef);
    const state = (await env.store.getState(completed))!;
    expect((await env.store.complete(completedRef, state, { sum: 1 }, 1, Date.now())).changed).toBe(true);

    const now = Date.now() + 61_000;
    const reconcilers = [new Reconciler({ ...env, log }), new Reconciler({ ...env, log, pageSize: 1 })];
    for (let i = 0; i < 3; i++) {
      const reports = await Promise.all(reconcilers.map((r) => r.run(now)));
      for (const r of reports) expect(r.failed).toBe(0);
    }

    const history = async (plan: string) =>
      (await env.store.listRounds(plan)).map((r) => [r.round, r.attempt]);
    expect(await history(late)).toEqual([
      [1, 1],
      [1, 2],
    ]);
    expect((await env.store.getRound({ plan: late, round: 1, attempt: 1 }))!.phase).toBe('failed');
    expect(await history(completed)).toEqual([
      [1, 1],
      [2, 1],
    ]);
    expect(await (await env.jobs.queue.getJob(finalizeJobId(closedRef)))?.getState()).toBe('waiting');
    expect((await env.store.getRound(closedRef))!.phase).toBe('closed');
    for (const plan of [late, completed, closed]) await env.store.setStatus(plan, 'cancelled');
  });
});

/**
 * The store as an engine sees it, with `race` run once when the engine first touches it: after the
 * first read returns (so that the engine holds what it read before), or before the first other call.
 */
function racing(store: RoundStore, race: () => Promise<void>): RoundStore {
  const reads = new Set<PropertyKey>(['getPlan', 'getRound', 'getPhase', 'listRounds']);
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (reads.has(prop)) {
          const result: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          await race();
          return result;
        }
        await race();
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
}

describe('a finalize job that is held and never settled', () => {
  test('the reconciler finalizes a round closed for long itself, not only queues its job', async () => {
    const env = await environment('held', { worker: true });
    const id = await env.submit({ rounds: 1, target_clients: 2, over_selection: 1, min_reports: 2, ...LONG });
    // The worker's finalize job begins and then never returns (as one held by a process that never settles
    // it): queueing the job again does nothing while it is active.
    let arrived!: () => void;
    const there = new Promise<void>((r) => (arrived = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    env.evaluator.hold = {
      arrived: () => {
        env.evaluator.hold = undefined;
        arrived();
      },
      release: released,
    };
    await env.upload(await env.assign(id), 1);
    await env.upload(await env.assign(id), 2);
    await there;
    const ref = { plan: id, round: 1, attempt: 1 };
    const info = (await env.store.getRound(ref))!;
    expect(info.phase).toBe('finalizing');

    const reconciler = new Reconciler({ store: env.store, engine: env.engine, jobs: env.jobs, log });
    await reconciler.run(info.closed_at! + 130_000);
    const done = await env.store.getRound(ref);
    expect(done).toMatchObject({ phase: 'completed', aggregated_clients: 2 });
    expect(done!.output).toEqual({ sum: 3, count: 2 });
    release();
  });
});
