import type { ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';
import { AppError } from '../../errors';
import { loggableError } from '../loggable-error';

/** Options of {@link errorHandler}. */
export interface ErrorHandlerOptions {
  readonly log: Logger;
}

/** Seconds a client is told to wait on a 503 that did not set its own Retry-After. */
const DEFAULT_RETRY_AFTER_S = 2;

/**
 * The one place that turns anything thrown into a response (`{error: {code, message, details}}`):
 * - an AppError answers with its own status and body;
 * - an http-errors client error that escaped the body parsers (they translate their own) is 400
 *   REQUEST_INVALID;
 * - Redis being unreachable is 503 NOT_READY;
 * - anything else is 500 INTERNAL with a generic message; the error is logged (name, message, stack:
 *   {@link loggableError}), never sent.
 * A 503 carries `Retry-After` unless the route set one.
 */
export function errorHandler(options: ErrorHandlerOptions): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (res.headersSent) {
      // The body is already on its way; express can only cut the connection.
      options.log.warn({ err: loggableError(err), path: req.path }, 'error after the response started');
      return next(err);
    }
    const appError = toAppError(err);
    // A 503 BUSY or NOT_READY is the server pacing its clients, not a fault: only unexpected failures are
    // logged as errors.
    if (appError.status >= 500 && appError.code !== 'BUSY') {
      options.log.error({ err: loggableError(err), method: req.method, path: req.path }, 'request failed');
    }
    if (appError.status === 503 && !res.get('Retry-After'))
      res.set('Retry-After', String(DEFAULT_RETRY_AFTER_S));
    res.status(appError.status).json(appError.toJSON());
  };
}

/** Normalises anything thrown into an AppError (exported for tests). */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (isClientHttpError(err)) {
    return new AppError('REQUEST_INVALID', err.expose ? err.message : 'the request could not be read');
  }
  if (isRedisUnavailable(err)) return new AppError('NOT_READY', 'the store is not reachable; retry later');
  return new AppError('INTERNAL', 'internal error');
}

function isClientHttpError(err: unknown): err is { status: number; expose: boolean; message: string } {
  const e = err as { status?: unknown; expose?: unknown } | null;
  return (
    typeof e === 'object' && e !== null && typeof e.status === 'number' && e.status >= 400 && e.status < 500
  );
}

function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|Stream isn't writeable|ECONNREFUSED|ETIMEDOUT/.test(err.message)
  );
}
