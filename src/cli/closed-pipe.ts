/**
 * Makes a closed stdout end the process quietly with 0: when the reader goes away (`roundhouse plans build
 * fedavg | head -1`) the output is no longer wanted, which is not a failure of the command. Without this,
 * Node reports the EPIPE of the next write as an unhandled 'error' event with a stack trace and exits 1.
 * Other stream errors keep failing loudly.
 */
export function exitQuietlyOnClosedPipe(
  stream: NodeJS.WriteStream = process.stdout,
  exit: (code: number) => void = (code) => process.exit(code),
): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') {
      exit(0);
      return;
    }
    throw e;
  });
}

/** Whether an error is a write to a closed pipe (stdout or stderr, e.g. a synchronous log write). */
export function isClosedPipe(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'EPIPE';
}
