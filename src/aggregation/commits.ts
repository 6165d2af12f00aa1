import { faultPoint } from '../faults';
import type { Logger } from '../log/logger';
import type { Jobs } from '../rounds/contracts';
import { roundTag, type AggregationStore, type Phase, type RoundRef } from '../store/types';
import type { Held, HeldPartials } from './held-partials';
import { taskOf, type Fetched, type JobsInHand } from './jobs-in-hand';
import { LeaseLost, type WorkerLease } from './lease';

/** How long jobs handed back after a failure of their attempt wait before they are fetched again. */
const RETRY_DELAY_MS = 1000;

/** What {@link PartialCommits} works with: the worker's parts. */
export interface PartialCommitsDeps {
  readonly store: AggregationStore;
  /** Where a commit that makes the round ready queues its finalize job. */
  readonly jobs: Pick<Jobs, 'finalize'>;
  readonly hand: JobsInHand;
  readonly held: HeldPartials<Fetched>;
  readonly lease: WorkerLease;
  readonly log: Logger;
}

/**
 * How an aggregation worker settles what it folded (docs/server.md, "Aggregation, exactly once", "Commit
 * threshold"): commits a partial with its tasks, or holds it below the minimum; after a conflict, names the
 * jobs to fold again; after a failure, forgets the partial and settles every job of the attempt in hand;
 * after losing its lease, hands every job back.
 */
export class PartialCommits {
  constructor(private readonly d: PartialCommitsDeps) {}

  private get id(): string {
    return this.d.lease.id;
  }

  /**
   * Commits the held uploads when the clients folded since this worker's last commit of the attempt
   * number at least min_clients_in_aggregate, or when the attempt is closed (no more uploads can come);
   * else keeps holding them, with their jobs in hand and their count recorded for back-pressure. So while
   * the attempt is open, two successive partials of a worker differ by at least the minimum of clients:
   * no difference of what is at rest isolates fewer (docs/server.md, "Commit threshold").
   *
   * Resolves with the jobs to fold again: after a conflict (another worker covered some tasks first), the
   * in-memory partial is dropped, the conflicting jobs are acknowledged, and the others (every upload held
   * since the last commit, from the jobs kept in memory) are to be folded again into the committed partial
   * as read back from Redis. Throws {@link LeaseLost} without committing when the worker does not hold its
   * lease, or when the commit was fenced.
   */
  async settle(ref: RoundRef, held: Held<Fetched>, phase: Phase, min: number): Promise<Fetched[]> {
    const { store, lease, log } = this.d;
    if (held.tasks.length === 0 || !held.partial) return [];
    if (held.clients - held.committed < min && phase !== 'closed') {
      if (held.recorded !== held.tasks.length) {
        await store.setHeld(ref, this.id, held.tasks.length);
        held.recorded = held.tasks.length;
      }
      return [];
    }
    if (!lease.held()) throw new LeaseLost(this.id, 'not renewed in time');
    const { jobs, rejected, gone } = held;
    const result = await store.commitPartial(ref, this.id, held.partial, held.tasks, rejected, {
      gone,
      epoch: lease.epoch,
    });
    if (result.ok) {
      await faultPoint('after-commit-before-ack');
      // Acknowledged first: nothing that may fail comes between the commit and the acknowledgements.
      Object.assign(held, {
        tasks: [],
        jobs: [],
        rejected: 0,
        gone: 0,
        committed: held.clients,
        recorded: 0,
      });
      await this.d.hand.ackAll(jobs);
      if (rejected > 0)
        log.warn({ plan: ref.plan, round: roundTag(ref), rejected }, 'uploads rejected by the worker');
      if (result.ready) await this.d.jobs.finalize(ref);
      return [];
    }
    if (result.fenced) {
      // Another process took this id's lease and committed: this one is a zombie of it.
      lease.markLost();
      throw new LeaseLost(
        this.id,
        `fenced: the id committed to ${ref.plan} ${roundTag(ref)} with a higher epoch`,
      );
    }
    // Every job of the attempt in hand stays there until settled: should anything below throw, the
    // caller's abandon() finds them by their attempt (JobsInHand.ofRef), even those dropped from `held`.
    await this.forget(ref);
    if (result.stale) {
      // The attempt moved on (finalizing, completed, failed): nothing more of it is accumulated.
      await this.d.hand.ackAll(jobs);
      return [];
    }
    if (result.conflicts.length === 0)
      throw new Error('commitPartial refused the partial without naming conflicts');
    const conflicts = new Set(result.conflicts);
    log.debug(
      { plan: ref.plan, round: roundTag(ref), conflicts: conflicts.size },
      'commit conflicts; folding the rest again',
    );
    await this.d.hand.ackAll(jobs.filter((f) => conflicts.has(taskOf(f))));
    return jobs.filter((f) => !conflicts.has(taskOf(f)));
  }

  /**
   * After a failure for an attempt (a Redis error, an isolate fault, no isolate able to start): the
   * partial's state in Redis is unknown (a commit may or may not have landed), so it is reloaded next time,
   * and every job of the attempt still in hand is settled, from every batch: the jobs of the batch that
   * failed are failed (BullMQ counts an attempt and backs off), the others, held from earlier batches or
   * dropped from `held` on the way (a conflict's refold), did nothing wrong and are handed back after a
   * delay without counting an attempt. None stays in hand, where its lock would be renewed forever.
   */
  async abandon(ref: RoundRef, err: unknown, batch: readonly Fetched[], what: string): Promise<void> {
    const inBatch = new Set(batch);
    const jobs = this.d.hand.ofRef(ref);
    await this.forget(ref);
    this.d.log.warn({ err, plan: ref.plan, round: roundTag(ref), jobs: jobs.length }, what);
    for (const f of jobs) {
      if (inBatch.has(f)) await this.d.hand.fail(f, err);
      else await this.d.hand.release(f, RETRY_DELAY_MS);
    }
  }

  /** Drops this worker's partial of an attempt and its held count; returns the jobs it held. */
  async forget(ref: RoundRef): Promise<Fetched[]> {
    const { jobs, recorded } = this.d.held.drop(ref);
    await this.clearHeld(ref, recorded);
    return jobs;
  }

  /**
   * Hands back every job in hand and forgets every partial: at shutdown (`clearCounts`: the held counts go
   * too, best effort), or after losing the lease (the counts stay: they are the id's, which another
   * process may hold now).
   */
  async handBackAll(clearCounts: boolean): Promise<void> {
    const dropped = this.d.held.clear();
    await this.d.hand.releaseAll();
    if (clearCounts) for (const { ref, recorded } of dropped) await this.clearHeld(ref, recorded);
  }

  /**
   * Clears this worker's held count of an attempt, best effort: a count left behind (as a crashed worker
   * leaves its own) only loosens the back-pressure bound, until the attempt ends.
   */
  private async clearHeld(ref: RoundRef, recorded: number): Promise<void> {
    if (recorded === 0) return;
    try {
      await this.d.store.setHeld(ref, this.id, 0);
    } catch (err) {
      this.d.log.warn({ err, plan: ref.plan, round: roundTag(ref) }, 'could not clear the held count');
    }
  }
}
