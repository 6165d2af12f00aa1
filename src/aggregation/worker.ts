import { randomBytes } from 'node:crypto';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type Redis from 'ioredis';
import { disposeValue } from '../compute/value';
import type { Config } from '../config';
import type { Logger } from '../log/logger';
import type { Engine, PlanCache } from '../rounds/contracts';
import { NotReadyError } from '../rounds/engine';
import { roundTag, type RoundInfo, type RoundRef, type RoundStore } from '../store/types';
import { foldUploads } from './fold';
import { HeldPartials } from './held-partials';
import { BullJobs, QUEUE_NAME, queuePrefix, refOf, validateJob, type AggregationJobData } from './jobs';
import { encodePartial } from './partial';

/** What an aggregation worker needs. */
export interface AggregationWorkerOptions {
  /** For BullMQ's blocking fetches: an ioredis client with `maxRetriesPerRequest: null`; stays the caller's. */
  readonly connection: Redis;
  readonly store: RoundStore;
  readonly engine: Engine;
  readonly plans: PlanCache;
  /** `workerLockMs` is the lock duration of fetched jobs; they are renewed while a batch is in hand. */
  readonly config: Pick<
    Config,
    'redisPrefix' | 'workerBatch' | 'workerBatchWaitMs' | 'workerLockMs' | 'limits'
  >;
  readonly log: Logger;
  /** The id its partials are committed under; default random, so that each process has its own. */
  readonly id?: string;
}

/** A job this worker holds the lock of. */
interface Fetched {
  readonly job: Job;
  readonly token: string;
  /** The validated payload, or why it is invalid. */
  readonly parsed: AggregationJobData | { readonly name: 'invalid'; readonly error: Error };
}

const OPEN_PHASES: ReadonlySet<RoundInfo['phase']> = new Set(['selecting', 'reporting', 'closed']);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * An aggregation worker (docs/server.md, "Aggregation, exactly once"). It fetches jobs from the `agg` queue
 * by hand, so that it can fold a batch of uploads into its partial of a round attempt and commit the partial
 * with the batch's task ids in one atomic step before acknowledging any of them: a worker killed before
 * the commit loses nothing (the jobs are redelivered), one killed after it counts nothing twice (redelivered
 * jobs find their task covered). Finalize and deadline jobs are handed to the round engine.
 */
export class AggregationWorker {
  /** The id this worker commits its partials under. */
  readonly id: string;
  private readonly bull: Worker;
  /** Where a commit that makes the round ready queues its finalize job. */
  private readonly jobs: BullJobs;
  private readonly lockMs: number;
  private readonly held: HeldPartials;
  private readonly inHand = new Set<Fetched>();
  private stopping = false;
  private closing: Promise<void> | undefined;
  private loop: Promise<void> | undefined;
  private lockTimer: NodeJS.Timeout | undefined;
  private seq = 0;

  constructor(private readonly options: AggregationWorkerOptions) {
    this.id = options.id ?? `w-${randomBytes(8).toString('hex')}`;
    this.lockMs = options.config.workerLockMs;
    this.bull = new Worker(QUEUE_NAME, null, {
      connection: options.connection,
      prefix: queuePrefix(options.config.redisPrefix),
      lockDuration: this.lockMs,
      stalledInterval: this.lockMs,
      // A worker killed with jobs in hand makes them stall; several kills must not fail a job for good.
      maxStalledCount: 10,
      // Seconds a blocking fetch waits for a job; bounds how long close() waits for the fetch in flight.
      drainDelay: 1,
      autorun: false,
    });
    this.jobs = new BullJobs(options.connection, options.config.redisPrefix);
    this.held = new HeldPartials(options.store, this.id, options.config.limits);
    this.bull.on('error', (err) => this.options.log.warn({ err, worker: this.id }, 'BullMQ worker error'));
  }

  /** Starts fetching and processing jobs in the background. */
  async start(): Promise<void> {
    if (this.loop) return;
    await this.bull.waitUntilReady();
    await this.bull.startStalledCheckTimer();
    this.lockTimer = setInterval(() => void this.extendLocks(), Math.max(50, Math.floor(this.lockMs / 3)));
    this.lockTimer.unref();
    this.loop = this.run();
    this.options.log.info(
      { worker: this.id, batch: this.options.config.workerBatch },
      'aggregation worker running',
    );
  }

  /**
   * Stops fetching, finishes (and commits) the batch in hand, and closes BullMQ's connections; the
   * `connection` passed in stays open (its owner quits it). Idempotent.
   */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    await this.loop;
    if (this.lockTimer) clearInterval(this.lockTimer);
    await this.bull.close();
    await this.jobs.close();
    this.held.clear();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        const batch = await this.fetchBatch();
        if (batch.length > 0) await this.handle(batch);
      } catch (err) {
        if (this.stopping) break;
        this.options.log.error({ err, worker: this.id }, 'aggregation worker loop failed; retrying');
        await sleep(500);
      }
    }
  }

  /**
   * Waits for a job; if it is an accumulate job, takes more until the batch is full or
   * `workerBatchWaitMs` has passed. A finalize or deadline job ends the batch.
   */
  private async fetchBatch(): Promise<Fetched[]> {
    const first = await this.fetch(true);
    if (!first) return [];
    const batch = [first];
    if (first.parsed.name !== 'accumulate') return batch;
    const { workerBatch, workerBatchWaitMs } = this.options.config;
    const until = Date.now() + workerBatchWaitMs;
    while (!this.stopping && batch.length < workerBatch) {
      const next = await this.fetch(false);
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

  private async fetch(block: boolean): Promise<Fetched | undefined> {
    if (this.stopping) return undefined;
    const token = `${this.id}.${++this.seq}`;
    const job = (await this.bull.getNextJob(token, { block })) as Job | undefined;
    if (!job) return undefined;
    let parsed: Fetched['parsed'];
    try {
      parsed = validateJob(job.name, job.data);
    } catch (e) {
      parsed = { name: 'invalid', error: e instanceof Error ? e : new Error(String(e)) };
    }
    const fetched = { job, token, parsed };
    this.inHand.add(fetched);
    return fetched;
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
        // The partial's state in Redis is unknown (a commit may or may not have landed): reload it next time.
        this.held.drop(ref);
        this.options.log.warn(
          { err, plan: ref.plan, round: roundTag(ref), jobs: items.length },
          'accumulate batch failed',
        );
        for (const f of items) await this.fail(f, err);
      }
    }
    for (const f of control) await this.control(f);
    this.held.evictIdle();
  }

  /** Folds a batch of one round attempt's uploads into this worker's partial and commits it. */
  private async accumulate(ref: RoundRef, items: Fetched[]): Promise<void> {
    const { store, plans, log } = this.options;
    const info = await store.getRound(ref);
    if (!info || !OPEN_PHASES.has(info.phase)) {
      // The attempt finished (or failed and was discarded): nothing of it is to be accumulated any more.
      for (const f of items) await this.ack(f);
      return;
    }
    const loaded = await plans.get(ref.plan);
    if (!loaded) {
      for (const f of items) await this.ack(f);
      return;
    }
    let tasks = [...new Set(items.map((f) => (f.parsed as { data: { task: string } }).data.task))];
    const covered = await Promise.all(tasks.map((t) => store.isCovered(ref, t)));
    tasks = tasks.filter((_, i) => !covered[i]);
    const uploads = new Map<string, Uint8Array | undefined>();
    await Promise.all(tasks.map(async (t) => uploads.set(t, await store.getUpload(ref, t))));

    while (tasks.length > 0) {
      const held = await this.held.get(ref, loaded, info);
      const folded = foldUploads(loaded, ref.round, held, tasks, uploads, this.options.config.limits);
      let result;
      try {
        const bytes = encodePartial(loaded.checked.types, folded.acc, folded.sums, folded.clients);
        result = await store.commitPartial(ref, this.id, bytes, tasks);
      } catch (e) {
        if (folded.acc !== held.acc) disposeValue(folded.acc);
        throw e;
      }
      if (result.ok) {
        if (folded.acc !== held.acc) disposeValue(held.acc);
        Object.assign(held, {
          acc: folded.acc,
          sums: folded.sums,
          clients: folded.clients,
          usedAt: Date.now(),
        });
        for (const _ of folded.rejected) await store.countRejected(ref);
        if (folded.rejected.length > 0)
          log.warn(
            { plan: ref.plan, round: roundTag(ref), rejected: folded.rejected.length },
            'uploads rejected by the worker',
          );
        if (folded.gone.length > 0)
          log.warn(
            { plan: ref.plan, round: roundTag(ref), lost: folded.gone.length },
            'uploads lost before accumulation',
          );
        for (const f of items) await this.ack(f);
        if (result.ready) await this.jobs.finalize(ref);
        return;
      }
      if (folded.acc !== held.acc) disposeValue(folded.acc);
      if (result.stale) {
        // The attempt moved on (finalizing, completed, failed): nothing more of it is accumulated.
        this.held.drop(ref);
        break;
      }
      if (result.conflicts.length === 0)
        throw new Error('commitPartial refused the partial without naming conflicts');
      // Another worker covered these first: redo the batch without them, from the partial as committed.
      const conflicts = new Set(result.conflicts);
      tasks = tasks.filter((t) => !conflicts.has(t));
      log.debug(
        { plan: ref.plan, round: roundTag(ref), conflicts: conflicts.size },
        'commit conflicts; redoing the batch',
      );
    }
    for (const f of items) await this.ack(f);
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

  private async ack(f: Fetched): Promise<void> {
    try {
      await f.job.moveToCompleted(null, f.token, false);
    } catch (err) {
      // The lock was lost (the job stalled and went to another worker): that one will find it covered.
      this.options.log.warn({ err, job: f.job.id }, 'could not acknowledge a job');
    } finally {
      this.inHand.delete(f);
    }
  }

  private async fail(f: Fetched, err: unknown): Promise<void> {
    try {
      await f.job.moveToFailed(err instanceof Error ? err : new Error(String(err)), f.token, false);
    } catch (e) {
      this.options.log.warn({ err: e, job: f.job.id }, 'could not fail a job');
    } finally {
      this.inHand.delete(f);
    }
  }

  /** Keeps the locks of the jobs in hand while a batch takes long (BullMQ only renews them for processors). */
  private async extendLocks(): Promise<void> {
    await Promise.all(
      [...this.inHand].map(async (f) => {
        try {
          await f.job.extendLock(f.token, this.lockMs);
        } catch {
          // Lost already; ack or fail will say so.
        }
      }),
    );
  }
}
