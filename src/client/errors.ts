import type { ErrorCode, ErrorDetail } from '../errors';

/**
 * A failure answered by the server, with its HTTP status and machine-readable code (the server's error
 * table, `src/errors.ts`), or a transport failure (`code` NETWORK, status 0).
 */
export class RoundhouseError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | 'NETWORK' | 'UNKNOWN',
    message: string,
    readonly details: readonly ErrorDetail[] = [],
  ) {
    super(message);
    this.name = 'RoundhouseError';
  }

  /** Worth retrying later: transport failures, 5xx and 503 BUSY; never a 4xx verdict on the request. */
  get transient(): boolean {
    return this.status === 0 || this.status >= 500;
  }
}

/** Builds the typed error of a non-2xx response from its `{error: {code, message, details}}` body. */
export async function errorFromResponse(res: Response): Promise<RoundhouseError> {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const e = (body as { error?: { code?: string; message?: string; details?: ErrorDetail[] } } | undefined)
    ?.error;
  return new RoundhouseError(
    res.status,
    (e?.code as ErrorCode | undefined) ?? 'UNKNOWN',
    e?.message ?? `HTTP ${res.status} ${res.statusText}`,
    e?.details ?? [],
  );
}
