import type { Config } from '../config';
import { roundTag, type RoundRef } from '../store/types';
import type { Fetched } from './jobs-in-hand';
import { refOf } from './jobs';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Takes one job (waiting for one when `block`); undefined when there is none or the worker stops. */
export type FetchOne = (block: boolean) => Promise<Fetched | undefined>;

/**
 * Waits for a job (or, without `block`, takes one if there is one); if it is an accumulate job, takes more
 * until the batch is full or `workerBatchWaitMs` has passed. A finalize or deadline job ends the batch, and
 * so does a fetch that fails after the first.
 */
export async function fetchBatch(
  fetchOne: FetchOne,
  block: boolean,
  config: Pick<Config, 'workerBatch' | 'workerBatchWaitMs'>,
  stopping: () => boolean,
): Promise<Fetched[]> {
  const first = await fetchOne(block);
  if (!first) return [];
  const batch = [first];
  if (first.parsed.name !== 'accumulate') return batch;
  const until = Date.now() + config.workerBatchWaitMs;
  while (!stopping() && batch.length < config.workerBatch) {
    let next: Fetched | undefined;
    try {
      next = await fetchOne(false);
    } catch {
      // The jobs fetched so far are in hand already: a failed fetch ends the batch with them (they are
      // handled and settled as usual) rather than losing them to the loop's catch, where nothing would
      // settle them and their locks would be renewed forever. The loop's next fetch meets the error again.
      break;
    }
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

/** A batch split into its accumulate jobs by round attempt, and its other (finalize, deadline) jobs. */
export function splitBatch(batch: readonly Fetched[]): {
  groups: Array<{ ref: RoundRef; items: Fetched[] }>;
  control: Fetched[];
} {
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
  return { groups: [...groups.values()], control };
}
