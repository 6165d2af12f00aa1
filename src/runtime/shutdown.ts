import type { Logger } from '../log/logger';

/** What {@link closeOnSignals} does to the process; tests replace it. */
export interface ShutdownIo {
  readonly exit: (code: number) => void;
  readonly on: (signal: NodeJS.Signals, handler: () => void) => void;
}

const processIo: ShutdownIo = {
  exit: (code) => process.exit(code),
  on: (signal, handler) => void process.on(signal, handler),
};

/**
 * Runs `close` on the first SIGINT or SIGTERM and exits 0 when it finishes (1 if it throws or takes longer
 * than `timeoutMs`). A second signal exits at once with 130, for an operator who does not want to wait.
 * Long-running commands (`start`, `worker`) and worker entry points call it once their process is up.
 */
export function closeOnSignals(
  close: () => Promise<void>,
  log: Logger,
  options: { readonly timeoutMs?: number; readonly io?: ShutdownIo } = {},
): void {
  const io = options.io ?? processIo;
  const timeoutMs = options.timeoutMs ?? 30_000;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without waiting for the shutdown to finish');
      io.exit(130);
      return;
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      log.error({ timeoutMs }, 'shutdown did not finish in time; exiting');
      io.exit(1);
    }, timeoutMs);
    timer.unref();
    close().then(
      () => {
        clearTimeout(timer);
        log.info('stopped');
        io.exit(0);
      },
      (err: unknown) => {
        clearTimeout(timer);
        log.error({ err }, 'shutdown failed');
        io.exit(1);
      },
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) io.on(signal, () => onSignal(signal));
}
