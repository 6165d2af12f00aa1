/**
 * The BullMQ queue of aggregation work (docs/server.md, "Aggregation, exactly once"): the job names, ids,
 * options and payload validation shared by the producers (API, engine) and the aggregation workers.
 */
import { Queue, type JobsOptions } from 'bullmq';
import type { RedisClient } from '../store/redis-client';
import { AppError } from '../errors';
import type { AccumulateJob, DeadlineJob, FinalizeJob, ReconcileJob } from '../generated/jobs';
import type { Logger } from '../log/logger';
import type { Jobs } from '../rounds/contracts';
import { schemaErrorDetails, validatorFor, type SchemaValidator } from '../schema-validation';
import { roundTag, type DeadlineKind, type RoundRef } from '../store/types';

export type { AccumulateJob, DeadlineJob, FinalizeJob, ReconcileJob } from '../generated/jobs';

/** The queue's name. */
export const QUEUE_NAME = 'agg';

/** The job names on the queue. */
export const JOB_NAMES = ['accumulate', 'finalize', 'deadline', 'reconcile'] as const;
export type JobName = (typeof JOB_NAMES)[number];

/** A job read from the queue, validated: its name fixes its payload type. */
export type AggregationJobData =
  | { readonly name: 'accumulate'; readonly data: AccumulateJob }
  | { readonly name: 'finalize'; readonly data: FinalizeJob }
  | { readonly name: 'deadline'; readonly data: DeadlineJob }
  | { readonly name: 'reconcile'; readonly data: ReconcileJob };

/**
 * The BullMQ prefix of the queue: the store's prefix in braces, so that every key of the queue carries one
 * hash tag and BullMQ's scripts work on Redis Cluster.
 */
export function queuePrefix(prefix: string): string {
  return `{${prefix}}`;
}

/*
 * Job ids. docs/server.md writes them `acc:<plan>:<n.a>:<task>`, but BullMQ (>= 5.58.7) refuses a custom
 * id containing ':' (unless it splits into exactly three parts, a legacy allowance) because ':' separates
 * its Redis keys; so the parts are joined with '-'. Plan ids and `n.a` contain no '-', and the task id
 * (base64url, which may) comes last, so the ids stay unambiguous.
 */

/** `acc-<plan>-<n.a>-<task>`: one accumulate job per upload, so an upload is never queued twice at once. */
export function accumulateJobId(ref: RoundRef, task: string): string {
  return `acc-${ref.plan}-${roundTag(ref)}-${task}`;
}

/** Jobs read per page when a deleted plan's deadline jobs are looked for. */
const FORGET_PAGE = 500;

/** `fin-<plan>-<n.a>`. */
export function finalizeJobId(ref: RoundRef): string {
  return `fin-${ref.plan}-${roundTag(ref)}`;
}

/**
 * `dl-<plan>-<n.a>-<kind>-<at>` (kind `selection` or `reporting`, at in unix ms): one job per deadline
 * value, since BullMQ ignores an add whose id exists and a resume moves the deadline.
 */
export function deadlineJobId(ref: RoundRef, kind: DeadlineJob['kind'], at: number): string {
  return `dl-${ref.plan}-${roundTag(ref)}-${kind}-${at}`;
}

/** The id of the job scheduler that makes the `reconcile` jobs. */
export const RECONCILE_SCHEDULER_ID = 'reconcile';

/*
 * Finished jobs are removed, failed ones too: a job id that still exists makes BullMQ ignore a new add with
 * that id, and each of these must be addable again (an accumulate job re-enqueued by finalize after a loss, a
 * finalize asked for again once the round is ready). Failures are logged by the worker.
 */
const ACCUMULATE_OPTIONS: JobsOptions = {
  removeOnComplete: true,
  removeOnFail: true,
  attempts: 8,
  backoff: { type: 'exponential', delay: 500 },
};
const FINALIZE_OPTIONS: JobsOptions = {
  removeOnComplete: true,
  removeOnFail: true,
  // Retries while uploads are still being accumulated; a ready round promotes the waiting retry (finalize()).
  // Few attempts, so that no retry waits more than 4 s (a ready signal that came while the job ran finds
  // nothing to promote); a job that used them up is gone, and the reconciler queues it again.
  attempts: 5,
  backoff: { type: 'exponential', delay: 500 },
};
const DEADLINE_OPTIONS: JobsOptions = {
  removeOnComplete: true,
  removeOnFail: true,
  attempts: 8,
  backoff: { type: 'exponential', delay: 500 },
};

/** The reconciler's runs: one at a time is enough, and a failed run is simply followed by the next one. */
const RECONCILE_OPTIONS = { removeOnComplete: true, removeOnFail: true, attempts: 1 } as const;

const validators: Record<JobName, SchemaValidator> = {
  accumulate: schemaValidator('AccumulateJob'),
  finalize: schemaValidator('FinalizeJob'),
  deadline: schemaValidator('DeadlineJob'),
  reconcile: schemaValidator('ReconcileJob'),
};

function schemaValidator(definition: string): SchemaValidator {
  return validatorFor(`https://roundhouse.dev/schemas/jobs.schema.json#/definitions/${definition}`);
}

/**
 * Validates a job read from the queue against schemas/jobs.schema.json; throws AppError REQUEST_INVALID
 * naming every problem when the name is unknown or the payload does not match.
 */
export function validateJob(name: string, data: unknown): AggregationJobData {
  if (!(JOB_NAMES as readonly string[]).includes(name)) {
    throw new AppError('REQUEST_INVALID', `unknown job name ${JSON.stringify(name)}`);
  }
  const validate = validators[name as JobName];
  if (!validate(data)) {
    throw new AppError(
      'REQUEST_INVALID',
      `the ${name} job payload does not match schemas/jobs.schema.json`,
      schemaErrorDetails(validate.errors),
    );
  }
  return { name, data } as AggregationJobData;
}

/** The round attempt a job payload names. */
export function refOf(data: { plan: string; round: number; attempt: number }): RoundRef {
  return { plan: data.plan, round: data.round, attempt: data.attempt };
}

/** {@link Jobs} on one BullMQ queue `agg` with prefix `{<prefix>}`. */
export class BullJobs implements Jobs {
  readonly queue: Queue;

  /**
   * `connection` stays the caller's: closing this queue does not quit it. Without `log`, an unexpected
   * failure to promote a finalize job is thrown rather than logged.
   */
  constructor(
    connection: RedisClient,
    prefix: string,
    private readonly log?: Logger,
  ) {
    this.queue = new Queue(QUEUE_NAME, { connection, prefix: queuePrefix(prefix) });
  }

  async accumulate(ref: RoundRef, task: string): Promise<void> {
    const data: AccumulateJob = { ...refOf(ref), task };
    await this.queue.add('accumulate', data, { ...ACCUMULATE_OPTIONS, jobId: accumulateJobId(ref, task) });
  }

  /**
   * Queues the finalize job; when one already waits for a retry (the round was not ready), it is promoted
   * so that a round that just became ready is finalized now rather than after the backoff.
   */
  async finalize(ref: RoundRef): Promise<void> {
    const data: FinalizeJob = refOf(ref);
    const job = await this.queue.add('finalize', data, { ...FINALIZE_OPTIONS, jobId: finalizeJobId(ref) });
    try {
      if ((await job.getState()) === 'delayed') await job.promote();
    } catch (err) {
      // It left the delayed set in between (picked up, or finished and removed): nothing to promote.
      if (err instanceof Error && /not in the delayed state|Missing key for job/.test(err.message)) return;
      if (!this.log) throw err;
      this.log.warn({ err, job: job.id }, 'could not promote the finalize job');
    }
  }

  async deadlines(ref: RoundRef, at: { readonly [K in DeadlineKind]?: number }): Promise<void> {
    const now = Date.now();
    for (const kind of ['selection', 'sharing', 'reporting'] as const) {
      const when = at[kind];
      if (when === undefined) continue;
      const data: DeadlineJob = { ...refOf(ref), kind };
      const delay = Math.max(0, Math.ceil(when - now));
      await this.queue.add('deadline', data, {
        ...DEADLINE_OPTIONS,
        jobId: deadlineJobId(ref, kind, when),
        delay,
      });
    }
  }

  /**
   * Makes the job scheduler of the `reconcile` job run every `everyMs` (src/rounds/reconciler.ts). Every
   * worker process calls it at start: an upsert of the same scheduler changes nothing but its interval.
   */
  async scheduleReconcile(everyMs: number): Promise<void> {
    const data: ReconcileJob = {};
    await this.queue.upsertJobScheduler(
      RECONCILE_SCHEDULER_ID,
      { every: everyMs },
      { name: 'reconcile', data, opts: RECONCILE_OPTIONS },
    );
  }

  /**
   * Removes each attempt's deadline and finalize jobs unless a worker holds one right now (a locked job is
   * left to run: every handler finds a deleted plan's attempt gone and does nothing). Deadline job ids name
   * their time, which a resume may have moved, so those are found by their id's prefix among the waiting
   * and delayed jobs, read in pages.
   */
  async forget(refs: readonly RoundRef[]): Promise<void> {
    const ids = refs.map(finalizeJobId);
    const prefixes = [...new Set(refs.map((ref) => `dl-${ref.plan}-`))];
    for (let start = 0; ; start += FORGET_PAGE) {
      const page = await this.queue.getJobs(['delayed', 'waiting'], start, start + FORGET_PAGE - 1, true);
      for (const job of page) if (job?.id && prefixes.some((p) => job.id!.startsWith(p))) ids.push(job.id);
      if (page.length < FORGET_PAGE) break;
    }
    for (let i = 0; i < ids.length; i += 100) {
      await Promise.all(ids.slice(i, i + 100).map((id) => this.queue.remove(id)));
    }
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
