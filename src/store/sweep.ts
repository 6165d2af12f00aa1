/**
 * The sweep of finished round attempts (docs/server.md, "Retention"). Complete and fail RENAME an attempt's
 * tasks hash (and its partials set, past PARTIALS_IN_SCRIPT workers) to its garbage keys inside their
 * scripts (dropRoundData) and add the attempt's tag to the plan's sweep set; this module deletes the uploads
 * and partials those keys name, and the keys themselves, in bounded steps from outside Lua, so that no
 * script ever reads a whole round.
 *
 * Every step deletes what it read before it forgets where it read it (UNLINK the uploads, then HDEL their
 * fields), and a tag leaves the sweep set only once both garbage keys are gone: a sweep that dies half-way is
 * finished by the next one, and two sweeps of one plan at once only repeat idempotent deletes.
 */
import type { RedisClient } from './redis-client';
import type { Keys } from './keys';
import { parseRoundTag } from './types';

/** How much one sweep call may do. */
export interface SweepOptions {
  /** Fields or members one step reads (HSCAN/SSCAN `COUNT`); default 500. */
  readonly step?: number;
  /** Steps (one SCAN call and its deletes each) before the call returns unfinished; default unbounded. */
  readonly maxSteps?: number;
}

/** The default of {@link SweepOptions.step}. */
export const SWEEP_STEP = 500;

/** A step budget shared by the attempts and plans one call sweeps. */
class Budget {
  private left: number;
  constructor(maxSteps: number | undefined) {
    this.left = maxSteps ?? Infinity;
  }
  take(): boolean {
    if (this.left <= 0) return false;
    this.left -= 1;
    return true;
  }
}

/** Sweeps the plan's pending attempts until none is left or the budget runs out; true when none is left. */
export function sweepPlan(
  redis: RedisClient,
  keys: Keys,
  plan: string,
  options: SweepOptions = {},
): Promise<boolean> {
  return sweepPlanWithin(redis, keys, plan, options.step ?? SWEEP_STEP, new Budget(options.maxSteps));
}

async function sweepPlanWithin(
  redis: RedisClient,
  keys: Keys,
  plan: string,
  step: number,
  budget: Budget,
): Promise<boolean> {
  const sweepKey = keys.plan(plan).sweep;
  for (;;) {
    // A few tags at a time: the set is small (one tag per attempt finished since the last sweep).
    const tags = await redis.srandmember(sweepKey, 16);
    if (tags.length === 0) return true;
    for (const tag of tags) {
      const parsed = parseRoundTag(tag);
      if (!parsed) throw new Error(`plan ${plan}: malformed sweep entry "${tag}"`);
      if (!(await sweepAttempt(redis, keys, { plan, ...parsed }, step, budget))) return false;
      await redis.srem(sweepKey, tag);
    }
  }
}

/** Sweeps every plan listed in the global `sweeping` set; true when nothing is left to sweep. */
export async function sweepAll(redis: RedisClient, keys: Keys, options: SweepOptions = {}): Promise<boolean> {
  const budget = new Budget(options.maxSteps);
  const step = options.step ?? SWEEP_STEP;
  let cursor = '0';
  let done = true;
  do {
    const [next, plans] = await redis.sscan(keys.global.sweeping, cursor, 'COUNT', 100);
    for (const plan of plans) {
      if (await sweepPlanWithin(redis, keys, plan, step, budget)) await unlist(redis, keys, plan);
      else done = false;
    }
    cursor = next;
  } while (cursor !== '0');
  return done;
}

/**
 * Drops a plan from the global `sweeping` set once its sweep set is empty. The set may gain a tag between
 * the check and the SREM (a fail or complete running now); the second check puts the plan back then. A
 * process that dies between its script and its own sweep in that instant leaves the tag unlisted: the
 * plan's next complete, fail or delete sweeps it.
 */
export async function unlist(redis: RedisClient, keys: Keys, plan: string): Promise<void> {
  await redis.srem(keys.global.sweeping, plan);
  if ((await redis.scard(keys.plan(plan).sweep)) > 0) await redis.sadd(keys.global.sweeping, plan);
}

/** Deletes one attempt's garbage keys and what they name; false when the budget ran out first. */
async function sweepAttempt(
  redis: RedisClient,
  keys: Keys,
  ref: { plan: string; round: number; attempt: number },
  step: number,
  budget: Budget,
): Promise<boolean> {
  const k = keys.round(ref);
  // Tasks whose value starts with `u:` were uploaded; their upload key exists while not yet accumulated.
  const tasksDone = await drain(budget, async (cursor) => {
    const [next, flat] = await redis.hscan(k.garbage.tasks, cursor, 'COUNT', step);
    const fields: string[] = [];
    const uploads: string[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      fields.push(flat[i]!);
      if (flat[i + 1]!.startsWith('u:')) uploads.push(k.upload(flat[i]!));
    }
    if (uploads.length) await redis.unlink(...uploads);
    if (fields.length) await redis.hdel(k.garbage.tasks, ...fields);
    return next;
  });
  if (!tasksDone) return false;
  return drain(budget, async (cursor) => {
    const [next, workers] = await redis.sscan(k.garbage.partials, cursor, 'COUNT', step);
    if (workers.length) {
      await redis.unlink(...workers.map((w) => k.partial(w)));
      await redis.srem(k.garbage.partials, ...workers);
    }
    return next;
  });
}

/**
 * Runs `scan` from cursor 0 until the cursor comes back to 0, one budget step per call. A full pass sees
 * every element that stayed in the key throughout, and nothing is added to a garbage key, so the key is
 * empty (hence gone) after the pass.
 */
async function drain(budget: Budget, scan: (cursor: string) => Promise<string>): Promise<boolean> {
  let cursor = '0';
  do {
    if (!budget.take()) return false;
    cursor = await scan(cursor);
  } while (cursor !== '0');
  return true;
}
