import type { Job, Worker } from 'bullmq';
import type { Logger } from '../log/logger';
import { roundTag, type RoundRef } from '../store/types';
import { refOf, validateJob, type AggregationJobData } from './jobs';

/** A job a worker holds the lock of. */
export interface Fetched {
  readonly job: Job;
  readonly token: string;
  /** The validated payload, or why it is invalid. */
  readonly parsed: AggregationJobData | { readonly name: 'invalid'; readonly error: Error };
}

/** The task an accumulate job names. */
export function taskOf(f: Fetched): string {
  return (f.parsed as { data: { task: string } }).data.task;
}

/**
 * The jobs an aggregation worker fetched by hand and has not settled: fetching (with payload validation),
 * the three ways to settle one (acknowledge, fail, hand back), and the renewal of their locks, which BullMQ
 * only does for jobs of a processor function. A job stays in hand, its lock renewed, for as long as the
 * worker holds its upload uncommitted.
 */
export class JobsInHand {
  private readonly inHand = new Set<Fetched>();
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Whether a blocking fetch is in flight (it may wait up to 10 s for a delayed job to come due). */
  private blocked = false;

  constructor(
    private readonly bull: Worker,
    /** The lock duration of fetched jobs, in ms; locks are renewed every third of it. */
    private readonly lockMs: number,
    /** Prefix of the lock tokens (the worker id). */
    private readonly owner: string,
    private readonly log: Logger,
  ) {}

  /** Starts renewing the locks of the jobs in hand. */
  start(): void {
    this.timer ??= setInterval(() => void this.extendLocks(), Math.max(50, Math.floor(this.lockMs / 3)));
    this.timer.unref();
  }

  /** Stops renewing locks. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes the next job (waiting for one when `block`), validated; undefined when there is none. */
  async fetch(block: boolean): Promise<Fetched | undefined> {
    const token = `${this.owner}.${++this.seq}`;
    this.blocked = block;
    let job: Job | undefined;
    try {
      job = (await this.bull.getNextJob(token, { block })) as Job | undefined;
    } finally {
      this.blocked = false;
    }
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

  /**
   * The accumulate jobs in hand of one round attempt, from every batch (the one in flight and those held
   * uncommitted): after a failure for the attempt, the worker settles every one of them, so that none is
   * left in hand with its lock renewed forever.
   */
  ofRef(ref: RoundRef): Fetched[] {
    const key = refKey(ref);
    return [...this.inHand].filter(
      (f) => f.parsed.name === 'accumulate' && refKey(refOf(f.parsed.data)) === key,
    );
  }

  /**
   * Ends a blocking fetch in flight now, so that a worker that stops does not wait out BullMQ's block (up to
   * 10 s while the queue holds delayed jobs, such as a round's deadlines). The blocking connection is
   * dropped: its BZPOPMIN fails, no job moves (a job moves to active only after the block), and BullMQ
   * reconnects it for its own close. The fetch then answers no job, or throws a connection error.
   */
  async interruptFetch(): Promise<void> {
    if (!this.blocked) return;
    // waitUntilReady answers the blocking connection's client (BullMQ's public way to reach it).
    (await this.bull.waitUntilReady()).disconnect();
  }

  /** Whether the job is still in hand (not settled yet). */
  has(f: Fetched): boolean {
    return this.inHand.has(f);
  }

  /** Acknowledges a job: it is done. */
  async ack(f: Fetched): Promise<void> {
    try {
      await f.job.moveToCompleted(null, f.token, false);
    } catch (err) {
      // The lock was lost (the job stalled and went to another worker): that one will find it covered.
      this.log.warn({ err, job: f.job.id }, 'could not acknowledge a job');
    } finally {
      this.inHand.delete(f);
    }
  }

  /**
   * Acknowledges jobs all at once: their scripts go out together instead of one round trip after another
   * (a batch's jobs are settled by one commit, so their order does not matter). Never throws, like `ack`.
   */
  async ackAll(jobs: readonly Fetched[]): Promise<void> {
    await Promise.all(jobs.map((f) => this.ack(f)));
  }

  /** Fails a job; BullMQ retries it with backoff while it has attempts left. */
  async fail(f: Fetched, err: unknown): Promise<void> {
    try {
      await f.job.moveToFailed(err instanceof Error ? err : new Error(String(err)), f.token, false);
    } catch (e) {
      this.log.warn({ err: e, job: f.job.id }, 'could not fail a job');
    } finally {
      this.inHand.delete(f);
    }
  }

  /**
   * Puts a job back in the queue without counting an attempt (its upload was not committed): at once, or
   * after `delayMs` (BullMQ's `moveToDelayed`, which skips the attempt), so that a job handed back after a
   * failure is not fetched again in a tight loop.
   */
  async release(f: Fetched, delayMs = 0): Promise<void> {
    try {
      if (delayMs > 0) await f.job.moveToDelayed(Date.now() + delayMs, f.token);
      else await f.job.moveToWait(f.token);
    } catch (err) {
      // Its lock lapses instead, and the job is redelivered as stalled.
      this.log.warn({ err, job: f.job.id }, 'could not put a held job back');
    } finally {
      this.inHand.delete(f);
    }
  }

  /** Puts every job in hand back in the queue at once (shutdown, or a lost lease). */
  async releaseAll(): Promise<void> {
    for (const f of [...this.inHand]) await this.release(f);
  }

  /** How many jobs are in hand. */
  get size(): number {
    return this.inHand.size;
  }

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

function refKey(ref: RoundRef): string {
  return `${ref.plan}/${roundTag(ref)}`;
}
