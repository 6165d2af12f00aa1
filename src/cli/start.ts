import { Command, InvalidArgumentError } from 'commander';
import { createLogger } from '../log/logger';
import { closeOnSignals } from '../runtime/shutdown';
import { loadServerConfig } from './cli-config';

/** Parses a TCP port (0 = any free port), failing with the option's name. */
export function portNumber(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^[0-9]+$/.test(v) || n > 65535)
      throw new InvalidArgumentError(`${name} must be a port from 0 to 65535, got "${v}"`);
    return n;
  };
}

/**
 * `roundhouse start`: the API server and one aggregation worker in this process, with a private Redis when
 * none is configured or running locally. Configuration comes from the environment (README, "Configuration");
 * Ctrl-C or SIGTERM stops it cleanly.
 */
export function startCommand(): Command {
  return new Command('start')
    .description('run the API server and one aggregation worker (a private Redis when none is configured)')
    .option('--port <n>', 'HTTP port (default: PORT or 8080; 0 picks a free port)', portNumber('--port'))
    .option('--no-worker', 'run the API only; start workers with `roundhouse worker`')
    .action(async (opts: { port?: number; worker: boolean }) => {
      const { config, generated } = loadServerConfig({ port: opts.port });
      const log = createLogger({ level: config.logLevel });
      // Loaded here, not at the top, so that the other commands do not load the server's dependencies.
      const { startServer } = await import('../runtime/server');
      const server = await startServer(config, { worker: opts.worker, log, generated });
      closeOnSignals(() => server.close(), log);
    });
}
