import { fetchBatch } from './batches';
import type { Fetched } from './jobs-in-hand';

/** A fetched accumulate job of task `task` (only what fetchBatch reads). */
function job(task: string): Fetched {
  return {
    parsed: { name: 'accumulate', data: { plan: 'p', round: 1, attempt: 1, task } },
  } as unknown as Fetched;
}

test('a fetch that fails after the first ends the batch with the jobs in hand, instead of losing them', async () => {
  const answers: Array<() => Fetched | undefined> = [
    () => job('a'),
    () => job('b'),
    () => {
      throw new Error('OOM command not allowed when used memory > maxmemory');
    },
  ];
  const fetchOne = async () => answers.shift()!();
  const batch = await fetchBatch(fetchOne, true, { workerBatch: 16, workerBatchWaitMs: 1000 }, () => false);
  expect(batch.map((f) => (f.parsed as { data: { task: string } }).data.task)).toEqual(['a', 'b']);
});

test('a first fetch that fails throws: nothing is in hand yet', async () => {
  const fetchOne = async (): Promise<Fetched | undefined> => {
    throw new Error('READONLY');
  };
  await expect(
    fetchBatch(fetchOne, true, { workerBatch: 16, workerBatchWaitMs: 10 }, () => false),
  ).rejects.toThrow('READONLY');
});
