import type { Logger } from '../log/logger';

/** What {@link closeOnSignals} does to the process; tests replace it. */
export interface ShutdownIo {
  readonly exit: (code: number) => void;
  readonly on: (signal: NodeJS.Signals, handler: () => void) => void;
  readonly off?: (signal: NodeJS.Signals, handler: () => void) => void;
  /** The code the process exits with should it end on its own (nothing left to run) before `exit`. */
  readonly setExitCode?: (code: number) => void;
}

const processIo: ShutdownIo = {
  exit: (code) => process.exit(code),
  on: (signal, handler) => void process.on(signal, handler),
  off: (signal, handler) => void process.removeListener(signal, handler),
  setExitCode: (code) => void (process.exitCode = code),
};

/**
 * The exit code of a process stopped by `signal`, as a shell reports one killed by it (128 + its number:
 * 130 for SIGINT, 143 for SIGTERM), so that a supervisor or script can tell an interrupted run from a
 * finished one even when the shutdown was clean.
 */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1);
}

/**
 * Runs `close` on the first SIGINT or SIGTERM, logs "stopped" and exits with {@link signalExitCode} when it
 * finishes (1 if it throws or takes longer than `timeoutMs`). A second signal exits at once with its own
 * code, for an operator who does not want to wait. Long-running commands (`start`, `worker`) and worker
 * entry points call it once their process is up.
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
      io.exit(signalExitCode(signal));
      return;
    }
    stopping = true;
    // Set now: should the shutdown leave nothing running before it finishes (a step that holds no handle),
    // Node ends the process on its own, and an interrupted run must not look like a finished one (exit 0).
    io.setExitCode?.(signalExitCode(signal));
    log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      log.error({ timeoutMs }, 'shutdown did not finish in time; exiting');
      io.exit(1);
    }, timeoutMs);
    timer.unref();
    close().then(
      () => {
        clearTimeout(timer);
        log.info({ signal }, 'stopped');
        io.exit(signalExitCode(signal));
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

/** What {@link abortOnSignals} gives a command that stops its own work before it closes. */
export interface SignalAbort {
  /** Aborted by the first SIGINT or SIGTERM. */
  readonly signal: AbortSignal;
  /** The signal that arrived first, if any. */
  readonly received: NodeJS.Signals | undefined;
  /** Stops listening (a later signal gets Node's default handling again). */
  dispose(): void;
}

/**
 * Turns the first SIGINT or SIGTERM into an abort, for a command that runs work of its own before it
 * closes its servers (`demo`): the caller stops its work, closes, and exits with
 * {@link signalExitCode}. A second signal exits at once with its own code.
 */
export function abortOnSignals(log: Logger, io: ShutdownIo = processIo): SignalAbort {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  let disposed = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (disposed) return;
    if (received) {
      log.warn({ signal }, 'second signal: exiting without waiting for the shutdown to finish');
      io.exit(signalExitCode(signal));
      return;
    }
    received = signal;
    io.setExitCode?.(signalExitCode(signal));
    log.info({ signal }, 'shutting down');
    controller.abort(new Error(`interrupted by ${signal}`));
  };
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const handler = (): void => onSignal(signal);
    io.on(signal, handler);
    return [signal, handler] as const;
  });
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    dispose() {
      disposed = true;
      for (const [signal, handler] of handlers) io.off?.(signal, handler);
    },
  };
}
