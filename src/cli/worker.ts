import { Command } from 'commander';
import { createLogger } from '../log/logger';
import { closeOnSignals } from '../runtime/shutdown';
import { loadServerConfig } from './cli-config';

/**
 * `roundhouse worker`: one more aggregation worker against the configured Redis (REDIS_URL, else
 * 127.0.0.1:6379). Start as many as the upload rate needs, on any host that reaches Redis.
 */
export function workerCommand(): Command {
  return new Command('worker')
    .description('run one more aggregation worker against REDIS_URL (default 127.0.0.1:6379)')
    .option(
      '--id <id>',
      'worker id (default: a random one); names its partials in Redis, held by a lease: one live process per id',
    )
    .action(async (opts: { id?: string }) => {
      const { config } = loadServerConfig({});
      const log = createLogger({ level: config.logLevel, name: 'roundhouse-worker' });
      // Loaded here, not at the top, so that the other commands do not load the worker's dependencies.
      const { startWorker } = await import('../runtime/worker-process');
      const worker = await startWorker(config, log, opts.id === undefined ? {} : { id: opts.id });
      closeOnSignals(() => worker.close(), log);
    });
}
