import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { newPlanId } from '../store/ids';
import { BullJobs, QUEUE_NAME, finalizeJobId, queuePrefix } from './jobs';

// The finalize job's retries on a real queue (unique prefix), fetched by hand as the workers do.
const prefix = `rh-finalize-retry-test-${process.pid}-${Date.now()}`;
const queueRedis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
const workerRedis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
const jobs = new BullJobs(queueRedis, prefix);
const worker = new Worker(QUEUE_NAME, null, {
  connection: workerRedis,
  prefix: queuePrefix(prefix),
  autorun: false,
});

afterAll(async () => {
  await worker.close();
  await jobs.queue.obliterate({ force: true });
  await jobs.close();
  await Promise.all([queueRedis.quit(), workerRedis.quit()]);
});

async function take(token: string): Promise<Job> {
  const job = (await worker.getNextJob(token, { block: false })) as Job | undefined;
  if (!job) throw new Error('no job to take');
  return job;
}

test('a finalize job that is not ready waits at most 4 s between tries, and is queued again once gone', async () => {
  const ref = { plan: newPlanId(), round: 1, attempt: 1 };
  const id = finalizeJobId(ref);
  await jobs.finalize(ref);
  const waits: number[] = [];
  for (let i = 0; ; i++) {
    const job = await take(`t${i}`);
    expect(job.id).toBe(id);
    await job.moveToFailed(new Error('not ready'), `t${i}`);
    const again = await jobs.queue.getJob(id);
    if (!again) break;
    expect(await again.getState()).toBe('delayed');
    waits.push(again.delay);
    // The round became ready: asking for finalize again promotes the waiting retry.
    await jobs.finalize(ref);
    expect(await again.getState()).toBe('waiting');
  }
  // Before, 16 tries 1 s * 2^k apart: up to 2^14 s (4.5 h) between the last ones.
  expect(waits.length).toBeGreaterThan(0);
  expect(Math.max(...waits)).toBeLessThanOrEqual(4_000);
  // Used up: gone, and the next ask (a ready signal, the reconciler) queues it afresh.
  await jobs.finalize(ref);
  expect(await (await jobs.queue.getJob(id))?.getState()).toBe('waiting');
});

test('asking for finalize while the job runs changes nothing and throws nothing', async () => {
  const ref = { plan: newPlanId(), round: 1, attempt: 1 };
  await jobs.finalize(ref);
  const job = await take('running');
  await expect(jobs.finalize(ref)).resolves.toBeUndefined();
  expect(await job.getState()).toBe('active');
  await job.moveToCompleted(null, 'running', false);
});
