import type { RedisClient } from '../store/redis-client';
import { BullJobs } from '../aggregation/jobs';
import type { Config } from '../config';
import { armFaults } from '../faults';
import type { Logger } from '../log/logger';
import { IsolatePool } from '../isolate/isolate-pool';
import { RoundEngine } from '../rounds/engine';
import { StorePlanCache } from '../rounds/plan-cache';
import { RedisRoundStore } from '../store/redis-round-store';
import { Keys } from '../store/keys';
import { ProgramStore } from '../stateful/server/program-store';
import { DriverLoop, ProgramDriver } from '../stateful/server/driver';
import type { RedisHandle } from './redis';

/** The round server's parts that both the API process and a worker process need, wired to one Redis. */
export interface Core {
  /** The store's connection (readiness pings it). */
  readonly connection: RedisClient;
  readonly store: RedisRoundStore;
  readonly plans: StorePlanCache;
  readonly jobs: BullJobs;
  /** Where plan code runs: disposable worker-thread isolates. */
  readonly evaluator: IsolatePool;
  readonly engine: RoundEngine;
  /** Stateful programs and their sessions (docs/stateful.md). */
  readonly programs: ProgramStore;
}

/**
 * Wires the store, the plan cache, the job queue and the round engine to a Redis, with the process's pool
 * of plan isolates (not started here: the caller starts it, and closes it after the engine's users).
 */
export function createCore(config: Config, redis: RedisHandle, log: Logger): Core {
  if (config.faults.size > 0) {
    armFaults(config.faults);
    log.warn(
      { faults: [...config.faults.keys()] },
      'ROUNDHOUSE_FAULTS armed: fault points will crash or fail steps',
    );
  }
  const connection = redis.client({ name: 'roundhouse:store' });
  const store = new RedisRoundStore(
    connection,
    config.redisPrefix,
    {
      broadcasts: config.retainBroadcasts,
      failedAttempts: config.retainFailedAttempts,
    },
    { replicas: config.redisWaitReplicas, timeoutMs: config.redisWaitTimeoutMs },
  );
  const plans = new StorePlanCache(store, config.limits, config.planCacheSize);
  const jobs = new BullJobs(redis.client({ name: 'roundhouse:jobs' }), config.redisPrefix, log);
  const evaluator = new IsolatePool({ config: config.isolates, limits: config.limits, log });
  const engine = new RoundEngine({ store, jobs, plans, evaluator, config, log });
  const programs = new ProgramStore(connection, new Keys(config.redisPrefix));
  return { connection, store, plans, jobs, evaluator, engine, programs };
}

/**
 * Starts driving stateful programs from this process (an aggregation worker's): any number of processes
 * may, one program at a time each (docs/stateful.md, "Running a program").
 */
export function startProgramDriver(core: Core, config: Config, log: Logger): DriverLoop {
  const driver = new ProgramDriver({
    programs: core.programs,
    store: core.store,
    engine: core.engine,
    jobs: core.jobs,
    caller: core.evaluator,
    limits: config.limits,
    log,
  });
  const loop = new DriverLoop(driver, core.programs, log);
  loop.start();
  return loop;
}

/**
 * Starts the first plan isolate, so that the log says early which backend plan code runs on. A failure is
 * logged, not fatal: `/readyz` answers 503 until an isolate can start.
 */
export async function startIsolates(core: Core, log: Logger): Promise<void> {
  try {
    await core.evaluator.start();
  } catch (err) {
    log.error({ err }, 'no plan isolate could start; not ready until one can');
  }
}

/**
 * Warns when Redis may evict keys (a `maxmemory-policy` other than `noeviction`): an evicted upload of an
 * accepted task is found gone by the worker and counted without effect, so an upload that got 202 would
 * be lost silently. Best effort: a Redis that hides INFO is not checked.
 */
export async function checkEvictionPolicy(core: Core, log: Logger): Promise<string | undefined> {
  try {
    const policy = /maxmemory_policy:(\S+)/.exec(await core.connection.info('memory'))?.[1];
    if (policy && policy !== 'noeviction') {
      log.warn(
        { maxmemory_policy: policy },
        'Redis may evict keys (maxmemory-policy is not noeviction): accepted uploads could be lost; set it to noeviction',
      );
    }
    return policy;
  } catch (err) {
    log.debug({ err }, 'could not read the Redis maxmemory-policy');
    return undefined;
  }
}
