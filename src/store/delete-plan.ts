/**
 * Deleting a finished plan's keys (docs/server.md, "Retention"): `DELETE /v1/plans/{id}` through
 * `RoundStore.deletePlan`. Every key of a plan carries its hash tag, so one `SCAN` of `P:{id}:*` in bounded
 * steps finds them all; the global entries (plans zset, population set, sweeping set) are removed by name.
 */
import { scanKeys, type RedisClient } from './redis-client';
import type { Keys } from './keys';
import { parseRoundTag, type DeleteResult, type RoundRef } from './types';

/** Keys one SCAN call of the delete looks at (its `COUNT`), and lines one history read takes. */
const STEP = 500;

/**
 * Deletes every key of a plan that is cancelled, completed or failed; refuses an active or paused one.
 * The plan's meta hash goes last, so that a delete interrupted half-way still finds the plan and can be
 * repeated to the end; nothing recreates a key of a finished plan (every script checks the attempt's phase or
 * the plan's meta before it writes).
 */
export async function deletePlanKeys(redis: RedisClient, keys: Keys, id: string): Promise<DeleteResult> {
  const p = keys.plan(id);
  const [status, population] = await redis.hmget(p.meta, 'status', 'population');
  if (!status) return { outcome: 'unknown' };
  if (status === 'active' || status === 'paused') return { outcome: 'open', status };
  // Global entries first: a plan that is listed nowhere is neither shown nor offered while its keys go.
  await redis.zrem(keys.global.plans, id);
  if (population) await redis.srem(keys.global.population(population), id);
  let deleted = 0;
  // The plan's keys share its slot, so one UNLINK takes each batch, on a Cluster too; the scan visits every
  // primary (only the slot's owner finds any).
  await scanKeys(
    redis,
    keys.planPattern(id),
    async (found) => {
      const doomed = found.filter((k) => k !== p.meta);
      if (doomed.length) deleted += await redis.unlink(...doomed);
    },
    STEP,
  );
  deleted += await redis.unlink(p.meta);
  // Its garbage keys went with the scan: nothing is left to sweep.
  await redis.srem(keys.global.sweeping, id);
  return { outcome: 'deleted', keys: deleted };
}

/**
 * Every round attempt the plan may have opened: for each round in its history, attempts 1 to the highest
 * one listed (the history loses the entries of failed attempts that retention deleted, but attempts of a
 * round are numbered from 1 without gaps). Read in bounded steps.
 */
export async function attemptsOf(redis: RedisClient, keys: Keys, plan: string): Promise<RoundRef[]> {
  const history = keys.plan(plan).history;
  const highest = new Map<number, number>();
  for (let start = 0; ; start += STEP) {
    const tags = await redis.lrange(history, start, start + STEP - 1);
    for (const tag of tags) {
      const parsed = parseRoundTag(tag);
      if (!parsed) throw new Error(`plan ${plan}: malformed history entry "${tag}"`);
      highest.set(parsed.round, Math.max(highest.get(parsed.round) ?? 0, parsed.attempt));
    }
    if (tags.length < STEP) break;
  }
  const refs: RoundRef[] = [];
  for (const [round, last] of [...highest].sort(([a], [b]) => a - b)) {
    for (let attempt = 1; attempt <= last; attempt++) refs.push({ plan, round, attempt });
  }
  return refs;
}
