// One aggregation worker process: `node dist/workers/aggregation-worker.js` (the same as `roundhouse worker`).
// It reads its configuration from the environment (REDIS_URL, REDIS_PREFIX, WORKER_BATCH, ...; see the
// README), picks the TensorFlow.js backend (logged), connects to Redis and works the `agg` queue until
// SIGTERM or SIGINT, when it finishes and commits the batch in hand and exits.
import { loadConfig } from '../src/config';
import { createLogger } from '../src/log/logger';
import { startWorker } from '../src/runtime/worker-process';
import { closeOnSignals } from '../src/runtime/shutdown';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, name: 'roundhouse-worker' });
  try {
    // startWorker logs the backend and the Redis it uses; it never starts a private Redis of its own.
    const worker = await startWorker(config, log);
    closeOnSignals(() => worker.close(), log);
  } catch (err) {
    log.fatal({ err }, 'the aggregation worker could not start');
    process.exit(1);
  }
}

main().catch((err: unknown) => {
  // A bad configuration value fails before there is a logger.
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
