/**
 * The store's steps of a round's clock (docs/server.md, "Deadlines, pause, resume, cancel"): the deadline
 * decision, the status changes that stop, restart or end it, and how long a task token stays valid. Each
 * decision is one Lua script that reads what it decides on; `RedisRoundStore` delegates here.
 */
import type { RedisClient } from './redis-client';
import type { Keys } from './keys';
import { isPhase } from './parse';
import { exec, tuple } from './replies';
import { SCRIPTS } from './scripts';
import { roundTag, type DeadlineKind, type DeadlineResult, type RoundRef } from './types';

/**
 * The keys a script that may fail attempt `ref` passes after the plan's meta, in failAttempt's order
 * (src/store/scripts/common.ts): the attempt's, then the plan's broadcasts list, sweep set and history.
 */
export function failKeys(keys: Keys, ref: RoundRef): string[] {
  const p = keys.plan(ref.plan);
  const k = keys.round(ref);
  return [
    k.round,
    k.tasks,
    k.covered,
    k.partials,
    k.devices,
    k.broadcast,
    p.broadcasts,
    p.sweep,
    k.garbage.tasks,
    k.garbage.partials,
    p.history,
  ];
}

/**
 * The KEYS a script that may discard an attempt's data takes after its fixed ones (attemptExtras in
 * src/store/scripts/common.ts): the attempt's SecAgg keys, the hash of attempt n.(a - keepFailed), and the
 * partial key of each of `workers`.
 */
export function extraKeys(
  keys: Keys,
  ref: RoundRef,
  keepFailed: number,
  workers: readonly string[],
): string[] {
  const k = keys.round(ref);
  return [
    ...Object.values(k.secagg),
    keys.round({ ...ref, attempt: Math.max(0, ref.attempt - keepFailed) }).round,
    ...workers.map((w) => k.partial(w)),
  ];
}

/**
 * Runs a script that may discard attempt `ref`'s data with its extra KEYS: reads the attempt's partials set,
 * declares each worker's partial, and runs again when a worker committed its first partial in between (the
 * script answered {'partials_moved'} and changed nothing).
 */
export async function runDropping(
  redis: RedisClient,
  keys: Keys,
  ref: RoundRef,
  keepFailed: number,
  run: (extras: string[]) => Promise<unknown>,
): Promise<unknown> {
  const partials = keys.round(ref).partials;
  for (let tries = 0; tries < 10; tries++) {
    const workers = await redis.smembers(partials);
    const reply = await run(extraKeys(keys, ref, keepFailed, workers));
    if (!(Array.isArray(reply) && reply[0] === 'partials_moved')) return reply;
  }
  throw new Error(
    `round ${ref.plan}/${roundTag(ref)}: workers kept committing new partials while it was ended`,
  );
}

/**
 * Runs the deadline script for `kind` of attempt `ref` (src/store/scripts/deadline.ts); a failed attempt
 * keeps the round's last `keepFailed` failures.
 */
export async function runDeadline(
  redis: RedisClient,
  keys: Keys,
  ref: RoundRef,
  kind: DeadlineKind,
  now: number,
  keepFailed: number,
): Promise<DeadlineResult> {
  const p = keys.plan(ref.plan);
  const [outcome, value, extra] = tuple(
    await runDropping(redis, keys, ref, keepFailed, (extras) =>
      SCRIPTS.deadline.run(
        redis,
        [p.meta, ...failKeys(keys, ref), ...extras],
        [ref.round, ref.attempt, kind, now, roundTag(ref), keys.round(ref).partialPrefix, keepFailed],
      ),
    ),
  );
  switch (outcome) {
    case 'stale':
    case 'paused':
      return { outcome };
    case 'not_yet':
      return { outcome, at: Number(value) };
    case 'sharing':
      return { outcome, advertised: Number(value), at: Number(extra) };
    case 'reporting':
      return { outcome, assigned: Number(value) };
    case 'closed':
      return { outcome, reported: Number(value) };
    case 'failed':
      return { outcome, error: value ?? '' };
    case 'none':
      if (isPhase(value)) return { outcome, phase: value };
  }
  throw new Error(`the deadline script answered ${String(outcome)} ${String(value)}`);
}

/** What the set-status script did besides the status. */
export interface StatusChange {
  readonly changed: boolean;
  readonly population: string;
}

/**
 * Runs the set-status script on the plan's current attempt, read from meta first; a script that finds the
 * attempt moved in between (an attempt opened) is run again on the new one.
 */
export async function runSetStatus(
  redis: RedisClient,
  keys: Keys,
  plan: string,
  to: 'active' | 'paused' | 'cancelled',
  now: number,
  keepFailed: number,
): Promise<StatusChange> {
  const p = keys.plan(plan);
  for (let tries = 0; tries < 10; tries++) {
    const [round, attempt] = await redis.hmget(p.meta, 'round', 'attempt');
    const ref: RoundRef = { plan, round: Number(round ?? 0), attempt: Number(attempt ?? 0) };
    const res = tuple(
      await runDropping(redis, keys, ref, keepFailed, (extras) =>
        SCRIPTS.setStatus.run(
          redis,
          [p.meta, ...failKeys(keys, ref), ...extras],
          [to, ref.round, ref.attempt, now, roundTag(ref), keys.round(ref).partialPrefix, keepFailed],
        ),
      ),
    );
    if (res[0] === 'moved') continue;
    return { changed: res[0] === '1', population: res[2] ?? '' };
  }
  throw new Error(`plan ${plan}: its current round kept moving while its status was set to ${to}`);
}

/**
 * Until when the attempt's task tokens stay valid (unix ms): its stored reporting deadline while it takes
 * uploads, later by the time paused so far if its plan is paused (the deadline moves by that on resume).
 */
export async function uploadDeadline(
  redis: RedisClient,
  keys: Keys,
  ref: RoundRef,
  now: number,
): Promise<number | undefined> {
  const r = await readClock(redis, keys, ref);
  return r.open ? r.later(r.reporting, now) : undefined;
}

/**
 * Until when a task token of an attempt running SecAgg authorizes its protocol steps (unix ms): the upload
 * deadline while the attempt selects, shares keys or takes reports, then its unmasking deadline while it is
 * closed; undefined after (or for an attempt without SecAgg).
 */
export async function secAggDeadline(
  redis: RedisClient,
  keys: Keys,
  ref: RoundRef,
  now: number,
): Promise<number | undefined> {
  const r = await readClock(redis, keys, ref);
  if (!r.secagg) return undefined;
  return r.later(r.open ? r.reporting : r.phase === 'closed' ? r.unmasking : undefined, now);
}

/**
 * An attempt's deadlines and its plan's pause, read in one MULTI (one slot): the status and the deadlines
 * as of one moment, not across a resume. `later` moves a deadline by the time paused so far when the plan is
 * paused (as a resume will); undefined stays undefined.
 */
async function readClock(redis: RedisClient, keys: Keys, ref: RoundRef) {
  const [[status, pausedAt], [phase, reporting, unmasking, openedAt, secagg]] = (await exec(
    redis
      .multi()
      .hmget(keys.plan(ref.plan).meta, 'status', 'paused_at')
      .hmget(
        keys.round(ref).round,
        'phase',
        'reporting_deadline',
        'unmasking_deadline',
        'opened_at',
        'secagg',
      ),
  )) as [(string | null)[], (string | null)[]];
  return {
    phase,
    open: phase === 'selecting' || phase === 'sharing' || phase === 'reporting',
    secagg: secagg !== null && secagg !== undefined,
    reporting: reporting ? Number(reporting) : undefined,
    unmasking: unmasking ? Number(unmasking) : undefined,
    later(deadline: number | undefined, now: number): number | undefined {
      if (deadline === undefined || status !== 'paused') return deadline;
      const since = Math.max(Number(pausedAt ?? now), Number(openedAt ?? 0));
      return deadline + Math.max(0, now - since);
    },
  };
}

/** One ZSCAN page of the plans index. */
export async function planPage(
  redis: RedisClient,
  keys: Keys,
  cursor: string,
  count: number,
): Promise<{ cursor: string; ids: string[] }> {
  const [next, flat] = await redis.zscan(keys.global.plans, cursor, 'COUNT', count);
  // Members and scores alternate.
  return { cursor: next, ids: flat.filter((_, i) => i % 2 === 0) };
}
