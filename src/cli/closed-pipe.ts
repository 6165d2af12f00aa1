/** What {@link exitQuietlyOnClosedPipe} does once the reader is gone; tests replace it. */
export interface ClosedPipeIo {
  /** Ends the process (default `process.exit`). */
  readonly exit?: (code: number) => void;
  /**
   * Whether the command stops through a SIGTERM handler (`demo`, `start`, `worker`): such a command holds a
   * server or a private redis-server that must be shut down, not dropped by an exit.
   */
  readonly stopsOnSignal?: () => boolean;
  /** Asks that command to stop (default: emits SIGTERM on the process, as `kill` would). */
  readonly stop?: () => void;
}

/**
 * Makes a closed stdout end the process quietly with 0: when the reader goes away (`roundhouse plans build
 * fedavg | head -1`) the output is no longer wanted, which is not a failure of the command. Without this,
 * Node reports the EPIPE of the next write as an unhandled 'error' event with a stack trace and exits 1.
 * A command that has a shutdown of its own is asked to stop instead (it then exits as its signal handler
 * says). Other stream errors keep failing loudly.
 */
export function exitQuietlyOnClosedPipe(
  stream: NodeJS.EventEmitter = process.stdout,
  io: ClosedPipeIo = {},
): void {
  const exit = io.exit ?? ((code: number) => process.exit(code));
  const stopsOnSignal = io.stopsOnSignal ?? (() => process.listenerCount('SIGTERM') > 0);
  const stop = io.stop ?? (() => void process.emit('SIGTERM', 'SIGTERM'));
  let closed = false;
  stream.on('error', (e: NodeJS.ErrnoException) => {
    // After the first EPIPE, writes to the destroyed stream fail too; they are as unwanted as the first.
    if (closed) return;
    if (e.code !== 'EPIPE') throw e;
    closed = true;
    if (stopsOnSignal()) stop();
    else exit(0);
  });
}

/** Whether an error is a write to a closed pipe (stdout or stderr, e.g. a synchronous log write). */
export function isClosedPipe(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'EPIPE';
}
