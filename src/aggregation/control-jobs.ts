import { UnrecoverableError } from 'bullmq';
import type { Logger } from '../log/logger';
import type { Engine } from '../rounds/contracts';
import { NotReadyError } from '../rounds/engine';
import type { Reconciler } from '../rounds/reconciler';
import type { Fetched, JobsInHand } from './jobs-in-hand';
import { refOf } from './jobs';

/**
 * Runs a finalize or deadline job through the round engine, a reconcile job through the reconciler, and
 * settles it: acknowledged when done, failed
 * (BullMQ retries it with backoff) when the engine throws, failed for good when its payload is invalid.
 */
export async function runControlJob(
  f: Fetched,
  engine: Pick<Engine, 'finalize' | 'onDeadline'>,
  reconciler: Pick<Reconciler, 'run'>,
  hand: Pick<JobsInHand, 'ack' | 'fail'>,
  log: Logger,
): Promise<void> {
  const p = f.parsed;
  if (p.name === 'invalid') {
    log.error({ job: f.job.id, name: f.job.name, err: p.error }, 'invalid job payload; dropped');
    await hand.fail(f, new UnrecoverableError(p.error.message));
    return;
  }
  try {
    if (p.name === 'finalize') await engine.finalize(refOf(p.data));
    else if (p.name === 'deadline') await engine.onDeadline(refOf(p.data), p.data.kind);
    else if (p.name === 'reconcile') await reconciler.run();
    await hand.ack(f);
  } catch (err) {
    if (err instanceof NotReadyError)
      log.debug({ job: f.job.id, reason: err.message }, 'finalize not ready; will retry');
    else log.warn({ err, job: f.job.id }, `${f.job.name} job failed; will retry`);
    await hand.fail(f, err);
  }
}
