import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * The process's structured JSON logger. CLI commands log to stderr so that stdout stays machine-readable
 * (plans, `--json` round results). Never log tensors or per-client values: see the privacy invariants.
 */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino(
    { name: options.name ?? 'roundhouse', level: options.level ?? 'info' },
    // Synchronous so that log lines and stdout output keep their order in a terminal.
    pino.destination({ dest: 2, sync: true }),
  );
}
