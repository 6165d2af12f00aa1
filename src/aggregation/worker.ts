import { randomBytes } from 'node:crypto';
import { Worker } from 'bullmq';
import type { RedisClient } from '../store/redis-client';
import { DEFAULT_EVAL_FAULT_RETRIES, type Config } from '../config';
import { faultPoint } from '../faults';
import type { PlanEvaluator } from '../isolate/contract';
import { failureReason } from '../isolate/fault-class';
import type { Logger } from '../log/logger';
import { RateLimitedLog } from '../log/rate-limited';
import type { Engine, PlanCache } from '../rounds/contracts';
import { planRef } from '../rounds/engine';
import { Reconciler } from '../rounds/reconciler';
import { roundTag, type Phase, type RoundRef, type RoundStore } from '../store/types';
import { fetchBatch, splitBatch } from './batches';
import { PartialCommits } from './commits';
import { runControlJob } from './control-jobs';
import { HeldPartials } from './held-partials';
import { BullJobs, QUEUE_NAME, queuePrefix } from './jobs';
import { JobsInHand, taskOf, type Fetched } from './jobs-in-hand';
import { LeaseLost, WorkerLease, checkWorkerId } from './lease';

/** What an aggregation worker needs. */
export interface AggregationWorkerOptions {
  /** For BullMQ's blocking fetches: an ioredis client with `maxRetriesPerRequest: null`; stays the caller's. */
  readonly connection: RedisClient;
  readonly store: RoundStore;
  readonly engine: Engine;
  readonly plans: PlanCache;
  /** Where `accumulate` runs: the process's isolate pool on the server. */
  readonly evaluator: PlanEvaluator;
  /** `workerLockMs` is the lock duration of fetched jobs; they are renewed while a batch is in hand. */
  readonly config: Pick<
    Config,
    'redisPrefix' | 'workerBatch' | 'workerBatchWaitMs' | 'workerLockMs' | 'reconcileIntervalMs'
  > &
    Partial<Pick<Config, 'evalFaultRetries'>>;
  readonly log: Logger;
  /**
   * The id its partials are committed under; default random, so that each process has its own. A lease
   * keeps two live processes from sharing one (`start` refuses, src/aggregation/lease.ts).
   */
  readonly id?: string;
}

const OPEN_PHASES: ReadonlySet<Phase> = new Set(['selecting', 'reporting', 'closed']);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** How often a worker holding uncommitted uploads looks whether their attempt closed. */
const HOLD_POLL_MS = 250;
/** How long a worker holding uploads waits between fetches that found nothing (it does not block). */
const HOLD_FETCH_MS = 50;

/**
 * An aggregation worker (docs/server.md, "Aggregation, exactly once"). It fetches jobs from the `agg` queue
 * by hand, so that it can fold a batch of uploads into its partial of a round attempt and commit the partial
 * with the batch's task ids in one atomic step before acknowledging any of them: a worker killed before
 * the commit loses nothing (the jobs are redelivered), one killed after it counts nothing twice (redelivered
 * jobs find their task covered). `accumulate` runs in the process's plan isolates; a partial is committed
 * only once the clients folded since its last commit number min_clients_in_aggregate or its attempt
 * closed (docs/server.md, "Commit threshold"). Finalize and deadline jobs are handed to the round engine.
 * The worker id is held by a lease (docs/server.md, "Worker leases"): without it, the worker commits nothing.
 */
export class AggregationWorker {
  /** The id this worker commits its partials under. */
  readonly id: string;
  private readonly bull: Worker;
  /** Where a commit that makes the round ready queues its finalize job. */
  private readonly jobs: BullJobs;
  private readonly hand: JobsInHand;
  private readonly held: HeldPartials<Fetched>;
  private readonly reconciler: Reconciler;
  private readonly lease: WorkerLease;
  private readonly commits: PartialCommits;
  private holdsCheckedAt = 0;
  /** Whether the worker stood down after losing its lease (it logs that once). */
  private standingDown = false;
  /**
   * Set where a commit met LeaseLost: the rest of that batch was left in hand, so the loop stands down and
   * hands every job back even should a renewal in flight make the lease look held again.
   */
  private leaseLostInBatch = false;
  private stopping = false;
  private closing: Promise<void> | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: AggregationWorkerOptions) {
    this.id = checkWorkerId(options.id ?? `w-${randomBytes(8).toString('hex')}`);
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
    this.jobs = new BullJobs(options.connection, options.config.redisPrefix, options.log);
    const { store, engine, log } = options;
    this.reconciler = new Reconciler({ store, engine, jobs: this.jobs, log });
    // Lock tokens name the process too: a zombie of this id must not renew the new holder's locks.
    this.hand = new JobsInHand(
      this.bull,
      lockMs,
      `${this.id}.${randomBytes(4).toString('hex')}`,
      options.log,
    );
    this.held = new HeldPartials<Fetched>(options.store, this.id, () => this.lease.epoch);
    this.lease = new WorkerLease(
      options.connection,
      options.config.redisPrefix,
      this.id,
      lockMs,
      options.log,
    );
    this.commits = new PartialCommits({
      store: options.store,
      jobs: this.jobs,
      hand: this.hand,
      held: this.held,
      lease: this.lease,
      log: options.log,
    });
    // While Redis is away BullMQ reports every failed reconnect: one line per kind of error a while.
    const errors = new RateLimitedLog(options.log);
    this.bull.on('error', (err) =>
      errors.write('warn', err.message, { err, worker: this.id }, 'BullMQ worker error'),
    );
  }

  /** Starts fetching and processing jobs in the background. */
  async start(): Promise<void> {
    if (this.loop) return;
    // First, so that a second process given this id refuses to start (WorkerIdTaken) before taking any job.
    await this.lease.acquire();
    try {
      await this.bull.waitUntilReady();
      await this.bull.startStalledCheckTimer();
      await this.jobs.scheduleReconcile(this.options.config.reconcileIntervalMs);
    } catch (e) {
      await this.lease.release();
      throw e;
    }
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
    await this.hand.interruptFetch();
    await this.loop;
    // Uploads held below the minimum are not committed: their jobs go back to the queue for another worker,
    // and the held counts go (best effort: a count left behind only loosens the bound until the attempt ends).
    await this.commits.handBackAll(true);
    this.hand.stop();
    await this.lease.release();
    await this.bull.close();
    await this.jobs.close();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        if (this.leaseLostInBatch || !this.lease.held()) {
          await this.standDown();
          continue;
        }
        // While it holds uploads, a worker must look at their attempts often: a blocking fetch may wait
        // up to BullMQ's longest block (10 s) when delayed jobs exist, so it polls instead.
        const holding = this.held.holding().length > 0;
        const batch = await fetchBatch(
          (block) => this.fetchOne(block),
          !holding,
          this.options.config,
          () => this.stopping,
        );
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
   * Without its lease the worker commits nothing: it hands every job in hand back (another process may hold
   * the id now and fold them) and forgets its partials, then tries to take the lease again now and then.
   */
  private async standDown(): Promise<void> {
    if (!this.standingDown || this.leaseLostInBatch) {
      this.standingDown = true;
      this.leaseLostInBatch = false;
      this.options.log.error(
        { worker: this.id, jobs: this.hand.size },
        'worker lease lost; handing the jobs in hand back and committing nothing until it is held again',
      );
      await this.commits.handBackAll(false);
    }
    if (await this.lease.reacquire()) {
      this.standingDown = false;
      this.options.log.warn({ worker: this.id, epoch: this.lease.epoch }, 'worker lease held again');
    } else {
      await sleep(Math.max(50, Math.floor(this.options.config.workerLockMs / 3)));
    }
  }

  private async handle(batch: Fetched[]): Promise<void> {
    const { groups, control } = splitBatch(batch);
    for (const { ref, items } of groups) {
      try {
        await this.accumulate(ref, items);
      } catch (err) {
        // Without the lease nothing is settled here: the loop stands down and hands every job back.
        if (err instanceof LeaseLost) {
          this.leaseLostInBatch = true;
          return;
        }
        await this.commits.abandon(ref, err, items, 'accumulate batch failed');
      }
    }
    // A finalize job waits for every upload: commit what this worker holds of a closed attempt first.
    if (control.length > 0) await this.checkHolds();
    for (const f of control) await this.control(f);
    this.held.evictIdle();
  }

  /**
   * Folds a batch of one round attempt's uploads into this worker's partial (in an isolate), then commits
   * it if it may be (see {@link PartialCommits.settle}) or holds it.
   */
  private async accumulate(ref: RoundRef, items: Fetched[]): Promise<void> {
    const { store, plans, log } = this.options;
    const info = await store.getRound(ref);
    const loaded = info && OPEN_PHASES.has(info.phase) ? await plans.get(ref.plan) : undefined;
    if (!info || !loaded) {
      // The attempt finished (or failed and was discarded): nothing of it is to be accumulated any more.
      await this.hand.ackAll([...items, ...(await this.commits.forget(ref))]);
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
    const read = await store.queuedUploads(ref, [...new Set(fresh.map(taskOf))]);
    const covered = new Set(read.filter((u) => u.covered).map((u) => u.task));
    const acks: Fetched[] = [];
    for (const f of fresh) {
      if (!covered.has(taskOf(f))) continue;
      // Committed by an earlier delivery (a worker that died or lost its lock between commit and ack).
      log.info(
        { plan: ref.plan, round: roundTag(ref), task: taskOf(f) },
        'redelivered upload already covered; acknowledged',
      );
      acks.push(f);
    }
    await this.hand.ackAll(acks);
    const uploads = read.flatMap((u) => (u.covered ? [] : [{ task: u.task, bytes: u.bytes }]));
    const tasks = uploads.map((u) => u.task);
    const jobs = fresh.filter((f) => !covered.has(taskOf(f)));
    if (tasks.length > 0) {
      await faultPoint('before-fold');
      // A round running SecAgg folds masked residues modulo its masking moduli.
      const secagg = info.secure_aggregation ? await store.secagg.setup(ref) : undefined;
      let folded;
      try {
        folded = await this.options.evaluator.fold(planRef(loaded), {
          round: ref.round,
          secureParams: info.secure_params,
          ...(secagg ? { masking: secagg.moduli } : {}),
          partial: held.partial,
          uploads,
        });
      } catch (e) {
        // A plan fault fails the attempt; an isolate fault throws (the batch is abandoned: its jobs back off,
        // the committed partial stays) until the attempt has faulted EVAL_FAULT_RETRIES times.
        await this.planFault(ref, await this.failureReason(ref, e), jobs);
        return;
      }
      Object.assign(held, { partial: folded.partial, clients: folded.clients, usedAt: Date.now() });
      held.tasks.push(...tasks);
      held.jobs.push(...jobs);
      held.rejected += folded.rejected.length;
      held.gone += folded.gone.length;
      if (folded.gone.length > 0)
        log.warn(
          { plan: ref.plan, round: roundTag(ref), lost: folded.gone.length },
          'uploads lost before accumulation',
        );
    }
    const redo = await this.commits.settle(ref, held, info.phase, info.min_aggregate);
    if (redo.length > 0) await this.accumulate(ref, redo);
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
          await this.hand.ackAll(await this.commits.forget(ref));
        } else if (phase === 'closed') {
          // Closed: committed whatever the count, so the minimum does not matter.
          const redo = await this.commits.settle(ref, await this.held.get(ref), phase, 0);
          if (redo.length > 0) await this.accumulate(ref, redo);
        }
      } catch (err) {
        if (err instanceof LeaseLost) {
          this.leaseLostInBatch = true;
          return;
        }
        await this.commits.abandon(ref, err, [], 'committing held uploads failed');
      }
    }
  }

  /** Why an evaluation error fails the attempt; throws it when it is to be retried (src/isolate/fault-class.ts). */
  private failureReason(ref: RoundRef, e: unknown): Promise<string> {
    const retries = this.options.config.evalFaultRetries ?? DEFAULT_EVAL_FAULT_RETRIES;
    return failureReason(e, () => this.options.store.countFault(ref), retries);
  }

  /** The plan's code faulted on this attempt: it fails (and the next opens); its jobs are done with. */
  private async planFault(ref: RoundRef, error: string, batch: Fetched[]): Promise<void> {
    this.options.log.warn({ plan: ref.plan, round: roundTag(ref), error }, 'plan fault while accumulating');
    await this.options.engine.onPlanFault(ref, error);
    await this.hand.ackAll([...batch, ...(await this.commits.forget(ref))]);
  }

  /** Runs a finalize or deadline job through the engine, a reconcile job through the reconciler. */
  private control(f: Fetched): Promise<void> {
    return runControlJob(f, this.options.engine, this.reconciler, this.hand, this.options.log);
  }

  private fetchOne(block: boolean): Promise<Fetched | undefined> {
    return this.stopping ? Promise.resolve(undefined) : this.hand.fetch(block);
  }
}
