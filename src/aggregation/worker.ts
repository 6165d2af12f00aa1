import { randomBytes } from 'node:crypto';
import { UnrecoverableError, Worker } from 'bullmq';
import type Redis from 'ioredis';
import type { Config } from '../config';
import { faultPoint } from '../faults';
import { isPlanFault, type PlanEvaluator } from '../isolate/contract';
import type { Logger } from '../log/logger';
import type { Engine, PlanCache } from '../rounds/contracts';
import { NotReadyError, planRef } from '../rounds/engine';
import { roundTag, type Phase, type RoundRef, type RoundStore } from '../store/types';
import { HeldPartials, type Held } from './held-partials';
import { BullJobs, QUEUE_NAME, queuePrefix, refOf } from './jobs';
import { JobsInHand, taskOf, type Fetched } from './jobs-in-hand';

/** What an aggregation worker needs. */
export interface AggregationWorkerOptions {
  /** For BullMQ's blocking fetches: an ioredis client with `maxRetriesPerRequest: null`; stays the caller's. */
  readonly connection: Redis;
  readonly store: RoundStore;
  readonly engine: Engine;
  readonly plans: PlanCache;
  /** Where `accumulate` runs: the process's isolate pool on the server. */
  readonly evaluator: PlanEvaluator;
  /** `workerLockMs` is the lock duration of fetched jobs; they are renewed while a batch is in hand. */
  readonly config: Pick<Config, 'redisPrefix' | 'workerBatch' | 'workerBatchWaitMs' | 'workerLockMs'>;
  readonly log: Logger;
  /** The id its partials are committed under; default random, so that each process has its own. */
  readonly id?: string;
}

const OPEN_PHASES: ReadonlySet<Phase> = new Set(['selecting', 'reporting', 'closed']);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** How often a worker holding uncommitted uploads looks whether their attempt closed. */
const HOLD_POLL_MS = 250;
/** How long a worker holding uploads waits between fetches that found nothing (it does not block). */
const HOLD_FETCH_MS = 50;
/** How long jobs handed back after a failure of their attempt wait before they are fetched again. */
const RETRY_DELAY_MS = 1000;

/**
 * An aggregation worker (docs/server.md, "Aggregation, exactly once"). It fetches jobs from the `agg` queue
 * by hand, so that it can fold a batch of uploads into its partial of a round attempt and commit the partial
 * with the batch's task ids in one atomic step before acknowledging any of them: a worker killed before
 * the commit loses nothing (the jobs are redelivered), one killed after it counts nothing twice (redelivered
 * jobs find their task covered). `accumulate` runs in the process's plan isolates; a partial is committed
 * only once the clients folded since its last commit number min_clients_in_aggregate or its attempt
 * closed (docs/server.md, "Commit threshold"). Finalize and deadline jobs are handed to the round engine.
 */
export class AggregationWorker {
  /** The id this worker commits its partials under. */
  readonly id: string;
  private readonly bull: Worker;
  /** Where a commit that makes the round ready queues its finalize job. */
  private readonly jobs: BullJobs;
  private readonly hand: JobsInHand;
  private readonly held: HeldPartials<Fetched>;
  private holdsCheckedAt = 0;
  private stopping = false;
  private closing: Promise<void> | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: AggregationWorkerOptions) {
    this.id = options.id ?? `w-${randomBytes(8).toString('hex')}`;
    const lockMs = options.config.workerLockMs;
    this.bull = new Worker(QUEUE_NAME, null, {
      connection: options.connection,
      prefix: queuePrefix(options.config.redisPrefix),
      lockDuration: lockMs,
      stalledInterval: lockMs,
      // A worker killed with jobs in hand makes them stall; several kills must not fail a job for good.
      maxStalledCount: 10,
      // Seconds a blocking fetch waits for a job; bounds how long close() waits for the fetch in flight.
      drainDelay: 1,
      autorun: false,
    });
    this.jobs = new BullJobs(options.connection, options.config.redisPrefix);
    this.hand = new JobsInHand(this.bull, lockMs, this.id, options.log);
    this.held = new HeldPartials<Fetched>(options.store, this.id);
    this.bull.on('error', (err) => this.options.log.warn({ err, worker: this.id }, 'BullMQ worker error'));
  }

  /** Starts fetching and processing jobs in the background. */
  async start(): Promise<void> {
    if (this.loop) return;
    await this.bull.waitUntilReady();
    await this.bull.startStalledCheckTimer();
    this.hand.start();
    this.loop = this.run();
    this.options.log.info(
      { worker: this.id, batch: this.options.config.workerBatch },
      'aggregation worker running',
    );
  }

  /**
   * Stops fetching, finishes the batch in hand, hands uploads it holds uncommitted back to the queue, and
   * closes BullMQ's connections; the `connection` passed in stays open (its owner quits it). Idempotent.
   */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    await this.loop;
    // Uploads held below the minimum are not committed: their jobs go back to the queue for another worker,
    // and the held counts go (best effort: a count left behind only loosens the bound until the attempt ends).
    for (const { ref, jobs, recorded } of this.held.clear()) {
      for (const f of jobs) if (this.hand.has(f)) await this.hand.release(f);
      await this.clearHeld(ref, recorded);
    }
    this.hand.stop();
    await this.bull.close();
    await this.jobs.close();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        // While it holds uploads, a worker must look at their attempts often: a blocking fetch may wait
        // up to BullMQ's longest block (10 s) when delayed jobs exist, so it polls instead.
        const holding = this.held.holding().length > 0;
        const batch = await this.fetchBatch(!holding);
        if (batch.length > 0) await this.handle(batch);
        else if (holding) await sleep(HOLD_FETCH_MS);
        if (Date.now() - this.holdsCheckedAt >= HOLD_POLL_MS) await this.checkHolds();
      } catch (err) {
        if (this.stopping) break;
        this.options.log.error({ err, worker: this.id }, 'aggregation worker loop failed; retrying');
        await sleep(500);
      }
    }
  }

  /**
   * Waits for a job (or, without `block`, takes one if there is one); if it is an accumulate job, takes
   * more until the batch is full or `workerBatchWaitMs` has passed. A finalize or deadline job ends the batch.
   */
  private async fetchBatch(block: boolean): Promise<Fetched[]> {
    const first = await this.fetchOne(block);
    if (!first) return [];
    const batch = [first];
    if (first.parsed.name !== 'accumulate') return batch;
    const { workerBatch, workerBatchWaitMs } = this.options.config;
    const until = Date.now() + workerBatchWaitMs;
    while (!this.stopping && batch.length < workerBatch) {
      const next = await this.fetchOne(false);
      if (next) {
        batch.push(next);
        if (next.parsed.name !== 'accumulate') break;
        continue;
      }
      const left = until - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(left, 10));
    }
    return batch;
  }

  private async handle(batch: Fetched[]): Promise<void> {
    const groups = new Map<string, { ref: RoundRef; items: Fetched[] }>();
    const control: Fetched[] = [];
    for (const f of batch) {
      if (f.parsed.name === 'accumulate') {
        const ref = refOf(f.parsed.data);
        const key = `${ref.plan}/${roundTag(ref)}`;
        const g = groups.get(key) ?? { ref, items: [] };
        g.items.push(f);
        groups.set(key, g);
      } else {
        control.push(f);
      }
    }
    for (const { ref, items } of groups.values()) {
      try {
        await this.accumulate(ref, items);
      } catch (err) {
        await this.abandon(ref, err, items, 'accumulate batch failed');
      }
    }
    // A finalize job waits for every upload: commit what this worker holds of a closed attempt first.
    if (control.length > 0) await this.checkHolds();
    for (const f of control) await this.control(f);
    this.held.evictIdle();
  }

  /**
   * Folds a batch of one round attempt's uploads into this worker's partial (in an isolate), then commits
   * it if it may be (see {@link settle}) or holds it.
   */
  private async accumulate(ref: RoundRef, items: Fetched[]): Promise<void> {
    const { store, plans } = this.options;
    const info = await store.getRound(ref);
    const loaded = info && OPEN_PHASES.has(info.phase) ? await plans.get(ref.plan) : undefined;
    if (!info || !loaded) {
      // The attempt finished (or failed and was discarded): nothing of it is to be accumulated any more.
      for (const f of [...items, ...(await this.forget(ref))]) await this.ack(f);
      return;
    }
    const held = await this.held.get(ref);
    const holding = new Set(held.tasks);
    const fresh: Fetched[] = [];
    for (const f of items) {
      // A job this worker holds, delivered again (its lock lapsed): it is acknowledged with the first.
      if (holding.has(taskOf(f))) held.jobs.push(f);
      else fresh.push(f);
    }
    let tasks = [...new Set(fresh.map(taskOf))];
    const covered = await Promise.all(tasks.map((t) => store.isCovered(ref, t)));
    for (const f of fresh) {
      if (!covered[tasks.indexOf(taskOf(f))]) continue;
      const where = { plan: ref.plan, round: roundTag(ref), task: taskOf(f) };
      this.options.log.info(where, 'redelivered upload already covered; acknowledged');
      await this.ack(f);
    }
    tasks = tasks.filter((_, i) => !covered[i]);
    const jobs = fresh.filter((f) => tasks.includes(taskOf(f)));
    if (tasks.length > 0) {
      const uploads = await Promise.all(
        tasks.map(async (task) => ({ task, bytes: await store.getUpload(ref, task) })),
      );
      await faultPoint('before-fold');
      let folded;
      try {
        folded = await this.options.evaluator.fold(planRef(loaded), {
          round: ref.round,
          secureParams: info.secure_params,
          partial: held.partial,
          uploads,
        });
      } catch (e) {
        if (!isPlanFault(e)) throw e;
        await this.planFault(ref, e.message.split('\n')[0] ?? e.code, jobs);
        return;
      }
      Object.assign(held, { partial: folded.partial, clients: folded.clients, usedAt: Date.now() });
      held.tasks.push(...tasks);
      held.jobs.push(...jobs);
      held.rejected += folded.rejected.length;
      if (folded.gone.length > 0)
        this.options.log.warn(
          { plan: ref.plan, round: roundTag(ref), lost: folded.gone.length },
          'uploads lost before accumulation',
        );
    }
    await this.settle(ref, held, info.phase, info.min_aggregate);
  }

  /**
   * Commits the held uploads when the clients folded since this worker's last commit of the attempt
   * number at least min_clients_in_aggregate, or when the attempt is closed (no more uploads can come);
   * else keeps holding them, with their jobs in hand and their count recorded for back-pressure. So while
   * the attempt is open, two successive partials of a worker differ by at least the minimum of clients:
   * no difference of what is at rest isolates fewer (docs/server.md, "Commit threshold").
   */
  private async settle(ref: RoundRef, held: Held<Fetched>, phase: Phase, min: number): Promise<void> {
    const { store, log } = this.options;
    if (held.tasks.length === 0 || !held.partial) return;
    if (held.clients - held.committed < min && phase !== 'closed') {
      if (held.recorded !== held.tasks.length) {
        await store.setHeld(ref, this.id, held.tasks.length);
        held.recorded = held.tasks.length;
      }
      return;
    }
    const { jobs, rejected } = held;
    const result = await store.commitPartial(ref, this.id, held.partial, held.tasks, rejected);
    if (result.ok) {
      await faultPoint('after-commit-before-ack');
      // Acknowledged first: nothing that may fail comes between the commit and the acknowledgements.
      Object.assign(held, { tasks: [], jobs: [], rejected: 0, committed: held.clients, recorded: 0 });
      for (const f of jobs) await this.ack(f);
      if (rejected > 0)
        log.warn({ plan: ref.plan, round: roundTag(ref), rejected }, 'uploads rejected by the worker');
      if (result.ready) await this.jobs.finalize(ref);
      return;
    }
    // Every job of the attempt in hand stays there until settled: should anything below throw, the
    // caller's abandon() finds them by their attempt (JobsInHand.ofRef), even those dropped from `held`.
    await this.forget(ref);
    if (result.stale) {
      // The attempt moved on (finalizing, completed, failed): nothing more of it is accumulated.
      for (const f of jobs) await this.ack(f);
      return;
    }
    if (result.conflicts.length === 0)
      throw new Error('commitPartial refused the partial without naming conflicts');
    // Another worker covered some of these first (their jobs came back to it): redo the rest from the
    // partial as committed.
    const conflicts = new Set(result.conflicts);
    log.debug(
      { plan: ref.plan, round: roundTag(ref), conflicts: conflicts.size },
      'commit conflicts; redoing',
    );
    for (const f of jobs) if (conflicts.has(taskOf(f))) await this.ack(f);
    await this.accumulate(
      ref,
      jobs.filter((f) => !conflicts.has(taskOf(f))),
    );
  }

  /**
   * After a failure for an attempt (a Redis error, no isolate able to start): the partial's state in Redis
   * is unknown (a commit may or may not have landed), so it is reloaded next time, and every job of the
   * attempt still in hand is settled, from every batch: the jobs of the batch that failed are failed
   * (BullMQ counts an attempt and backs off), the others, held from earlier batches or dropped from `held`
   * on the way (a conflict's redo), did nothing wrong and are handed back after a delay without counting
   * an attempt. None stays in hand, where its lock would be renewed forever.
   */
  private async abandon(ref: RoundRef, err: unknown, batch: readonly Fetched[], what: string): Promise<void> {
    const inBatch = new Set(batch);
    const jobs = this.hand.ofRef(ref);
    await this.forget(ref);
    this.options.log.warn({ err, plan: ref.plan, round: roundTag(ref), jobs: jobs.length }, what);
    for (const f of jobs) {
      if (inBatch.has(f)) await this.fail(f, err);
      else await this.hand.release(f, RETRY_DELAY_MS);
    }
  }

  /** Drops this worker's partial of an attempt and its held count; returns the jobs it held. */
  private async forget(ref: RoundRef): Promise<Fetched[]> {
    const { jobs, recorded } = this.held.drop(ref);
    await this.clearHeld(ref, recorded);
    return jobs;
  }

  /**
   * Clears this worker's held count of an attempt, best effort: a count left behind (as a crashed worker
   * leaves its own) only loosens the back-pressure bound, until the attempt ends.
   */
  private async clearHeld(ref: RoundRef, recorded: number): Promise<void> {
    if (recorded === 0) return;
    try {
      await this.options.store.setHeld(ref, this.id, 0);
    } catch (err) {
      this.options.log.warn({ err, plan: ref.plan, round: roundTag(ref) }, 'could not clear the held count');
    }
  }

  /**
   * Looks at every attempt this worker holds uploads of: commits them once it closed, lets them go once it
   * finished or failed (their uploads are discarded with it).
   */
  private async checkHolds(): Promise<void> {
    this.holdsCheckedAt = Date.now();
    for (const ref of this.held.holding()) {
      try {
        // Only the phase: this runs every HOLD_POLL_MS for each attempt held.
        const phase = await this.options.store.getPhase(ref);
        if (!phase || !OPEN_PHASES.has(phase)) {
          for (const f of await this.forget(ref)) await this.ack(f);
        } else if (phase === 'closed') {
          // Closed: committed whatever the count, so the minimum does not matter.
          await this.settle(ref, await this.held.get(ref), phase, 0);
        }
      } catch (err) {
        await this.abandon(ref, err, [], 'committing held uploads failed');
      }
    }
  }

  /** The plan's code faulted on this attempt: it fails (and the next opens); its jobs are done with. */
  private async planFault(ref: RoundRef, error: string, batch: Fetched[]): Promise<void> {
    this.options.log.warn({ plan: ref.plan, round: roundTag(ref), error }, 'plan fault while accumulating');
    await this.options.engine.onPlanFault(ref, error);
    for (const f of [...batch, ...(await this.forget(ref))]) await this.ack(f);
  }

  /** Runs a finalize or deadline job through the engine. */
  private async control(f: Fetched): Promise<void> {
    const { engine, log } = this.options;
    const p = f.parsed;
    if (p.name === 'invalid') {
      log.error({ job: f.job.id, name: f.job.name, err: p.error }, 'invalid job payload; dropped');
      await this.fail(f, new UnrecoverableError(p.error.message));
      return;
    }
    try {
      if (p.name === 'finalize') await engine.finalize(refOf(p.data));
      else if (p.name === 'deadline') await engine.onDeadline(refOf(p.data), p.data.kind);
      await this.ack(f);
    } catch (err) {
      if (err instanceof NotReadyError)
        log.debug({ job: f.job.id, reason: err.message }, 'finalize not ready; will retry');
      else log.warn({ err, job: f.job.id }, `${f.job.name} job failed; will retry`);
      await this.fail(f, err);
    }
  }

  private fetchOne(block: boolean): Promise<Fetched | undefined> {
    return this.stopping ? Promise.resolve(undefined) : this.hand.fetch(block);
  }

  private ack(f: Fetched): Promise<void> {
    return this.hand.ack(f);
  }

  private fail(f: Fetched, err: unknown): Promise<void> {
    return this.hand.fail(f, err);
  }
}
