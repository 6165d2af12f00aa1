import type { ErrorCode, ErrorDetail } from '../errors';

/**
 * What a {@link RoundhouseError} can carry: a server code, or one of the client's own: NETWORK (no answer
 * could be had), TIMEOUT (no answer in time, `ClientOptions.timeouts`), UNKNOWN (an answer not in the
 * server's error shape).
 */
export type ClientErrorCode = ErrorCode | 'NETWORK' | 'TIMEOUT' | 'UNKNOWN';

/**
 * A failure answered by the server, with its HTTP status and machine-readable code (the server's error
 * table, `src/errors.ts`), or a transport failure (`code` NETWORK or TIMEOUT, status 0).
 */
export class RoundhouseError extends Error {
  constructor(
    readonly status: number,
    readonly code: ClientErrorCode,
    message: string,
    readonly details: readonly ErrorDetail[] = [],
    /** The server's `Retry-After`, in ms, when it sent one (503 BUSY does). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'RoundhouseError';
  }

  /**
   * Worth retrying later: transport failures, 5xx (503 BUSY and NOT_READY included) and 429 RATE_LIMITED
   * (after its `Retry-After`); never another 4xx, which is the server's verdict on the request itself and
   * would be answered the same way again.
   */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

/** True when `e` is a {@link RoundhouseError}, with `code` when one is given. */
export function isRoundhouseError(e: unknown, code?: ClientErrorCode): e is RoundhouseError {
  return e instanceof RoundhouseError && (code === undefined || e.code === code);
}

/**
 * Parses `Retry-After` (delta seconds or an HTTP date) into ms from `now`; undefined when absent or
 * unparseable, so that the caller falls back to its own backoff.
 */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/**
 * Builds the typed error of a non-2xx response from its `{error: {code, message, details}}` body. A body
 * that is not the server's error shape (a proxy's HTML page) becomes code UNKNOWN with the HTTP status.
 */
export async function errorFromResponse(res: Response, now?: number): Promise<RoundhouseError> {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  const code = typeof e?.code === 'string' ? (e.code as ErrorCode) : 'UNKNOWN';
  const message = typeof e?.message === 'string' ? e.message : `HTTP ${res.status} ${res.statusText}`.trim();
  const details = Array.isArray(e?.details)
    ? (e.details as unknown[]).map((d) => {
        const o = (d ?? {}) as { path?: unknown; message?: unknown };
        return { path: String(o.path ?? ''), message: String(o.message ?? '') };
      })
    : [];
  return new RoundhouseError(
    res.status,
    code,
    message,
    details,
    parseRetryAfter(res.headers.get('retry-after'), now),
  );
}
