import { AggregationWorker } from '../aggregation/worker';
import type { Config } from '../config';
import type { Logger } from '../log/logger';
import { connectRedis, type ConnectRedisOptions } from './redis';
import { checkEvictionPolicy, createCore, startIsolates, startProgramDriver } from './core';
import type { DriverLoop } from '../stateful/server/driver';

/** A running aggregation worker process. */
export interface RunningWorker {
  /** The Redis it works against (password redacted in logs, not here). */
  readonly redisUrl: string;
  /** Closes the worker (it finishes its batch), the queue and Redis, in that order. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts one aggregation worker against the configured Redis: `roundhouse worker` and
 * `workers/aggregation-worker.ts` both call it. Unlike `roundhouse start`, it never starts a private
 * redis-server, since a Redis of its own would share no rounds with the API: it needs REDIS_URL or a Redis
 * on 127.0.0.1:6379.
 */
export async function startWorker(
  config: Config,
  log: Logger,
  options: { readonly id?: string; readonly redis?: ConnectRedisOptions } = {},
): Promise<RunningWorker> {
  const redis = await connectRedis(config, log, { ...options.redis, allowPrivate: false });
  let core: ReturnType<typeof createCore> | undefined;
  let worker: AggregationWorker | undefined;
  let driver: DriverLoop | undefined;
  try {
    core = createCore(config, redis, log);
    await startIsolates(core, log);
    await checkEvictionPolicy(core, log);
    worker = new AggregationWorker({
      connection: redis.client({ forBullWorker: true, name: 'roundhouse:worker' }),
      store: core.store,
      engine: core.engine,
      plans: core.plans,
      evaluator: core.evaluator,
      config,
      log,
      ...(options.id === undefined ? {} : { id: options.id }),
    });
    await worker.start();
    driver = startProgramDriver(core, config, log);
  } catch (e) {
    await driver?.stop().catch(() => undefined);
    await core?.jobs.close().catch(() => undefined);
    await core?.evaluator.close().catch(() => undefined);
    await redis.close();
    throw e;
  }
  log.info({ redis_prefix: config.redisPrefix }, 'aggregation worker started');

  const started = { worker, jobs: core.jobs, evaluator: core.evaluator, driver: driver! };
  let closing: Promise<void> | undefined;
  const closeAll = async (): Promise<void> => {
    for (const [what, close] of [
      ['programs', () => started.driver.stop()],
      ['worker', () => started.worker.close()],
      ['jobs', () => started.jobs.close()],
      ['isolates', () => started.evaluator.close()],
      ['redis', () => redis.close()],
    ] as const) {
      try {
        await close();
      } catch (err) {
        log.error({ err, what }, 'error while shutting down');
      }
    }
  };
  return { redisUrl: redis.url, close: () => (closing ??= closeAll()) };
}
