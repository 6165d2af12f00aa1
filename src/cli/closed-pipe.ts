// Commands that must shut down rather than be dropped by an exit, registered by onClosedStdout.
const stoppers = new Set<() => void>();

/**
 * Registers how a long command stops when its stdout reader goes away (`demo` holds a server and maybe a
 * private redis-server, which an exit would leave behind); answers the function that unregisters it.
 */
export function onClosedStdout(stop: () => void): () => void {
  stoppers.add(stop);
  return () => void stoppers.delete(stop);
}

/** What {@link exitQuietlyOnClosedPipe} does once the reader is gone; tests replace it. */
export interface ClosedPipeIo {
  /** Ends the process (default `process.exit`). */
  readonly exit?: (code: number) => void;
  /** The registered stops (default: those of {@link onClosedStdout}). */
  readonly stoppers?: ReadonlySet<() => void>;
}

/**
 * Makes a closed stdout end the process quietly with 0: when the reader goes away (`roundhouse plans build
 * fedavg | head -1`) the output is no longer wanted, which is not a failure of the command. Without this,
 * Node reports the EPIPE of the next write as an unhandled 'error' event with a stack trace and exits 1.
 * A command that registered a stop with {@link onClosedStdout} is asked to stop instead, and ends with 0
 * once it has cleaned up. Other stream errors keep failing loudly.
 */
export function exitQuietlyOnClosedPipe(
  stream: NodeJS.EventEmitter = process.stdout,
  io: ClosedPipeIo = {},
): void {
  const exit = io.exit ?? ((code: number) => process.exit(code));
  const registered = io.stoppers ?? stoppers;
  let closed = false;
  stream.on('error', (e: NodeJS.ErrnoException) => {
    // After the first EPIPE, writes to the destroyed stream fail too; they are as unwanted as the first.
    if (closed) return;
    if (e.code !== 'EPIPE') throw e;
    closed = true;
    if (registered.size === 0) exit(0);
    else for (const stop of [...registered]) stop();
  });
}

/** Whether an error is a write to a closed pipe (stdout or stderr, e.g. a synchronous log write). */
export function isClosedPipe(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'EPIPE';
}
