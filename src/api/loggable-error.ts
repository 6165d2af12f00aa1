/**
 * What of an error may be logged: its name, message, code and stack, and nothing else. Errors carry more
 * than that: an ioredis ReplyError has `command.args`, which for the upload script holds the upload's
 * bytes, and pino's serializer would log every enumerable property (privacy invariant 1).
 */
export function loggableError(err: unknown): {
  type: string;
  message: string;
  code?: string;
  stack?: string;
} {
  if (!(err instanceof Error)) return { type: typeof err, message: String(err) };
  const code = (err as { code?: unknown }).code;
  return {
    type: err.name,
    message: err.message,
    ...(typeof code === 'string' ? { code } : {}),
    ...(err.stack ? { stack: err.stack } : {}),
  };
}
