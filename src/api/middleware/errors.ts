import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';
import { AppError } from '../../errors';
import { RateLimitedLog } from '../../log/rate-limited';
import { loggableError } from '../loggable-error';
import { pathOf } from './request-log';

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
 * - Redis being unreachable is 503 NOT_READY, logged once a while per kind of failure;
 * - anything else is 500 INTERNAL with a generic message; the error is logged (name, message, stack:
 *   {@link loggableError}), never sent.
 * A 503 carries `Retry-After` unless the route set one.
 */
export function errorHandler(
  options: ErrorHandlerOptions & {
    /** The responder the routes served ahead of express use too, so that both share its rate limit. */
    readonly respond?: ErrorResponder;
  },
): ErrorRequestHandler {
  const respond = options.respond ?? errorResponder(options);
  return (err: unknown, req, res, next) => {
    if (res.headersSent) {
      // The body is already on its way; express can only cut the connection.
      options.log.warn({ err: loggableError(err), path: req.path }, 'error after the response started');
      return next(err);
    }
    respond(err, req, res);
  };
}

/** Answers an error on Node's own objects. */
export type ErrorResponder = (err: unknown, req: IncomingMessage, res: ServerResponse) => void;

/**
 * {@link errorHandler}'s answer on Node's own objects (routes served ahead of express, src/api/raw-routes.ts):
 * the same logging and the same response; a response already started is cut.
 */
export function errorResponder(options: ErrorHandlerOptions): ErrorResponder {
  // While Redis (or what else a request needs) is unreachable, every request fails the same way: one line
  // per kind a while is enough.
  const unavailable = new RateLimitedLog(options.log);
  return (err, req, res) => {
    const path = pathOf(req);
    if (res.headersSent) {
      options.log.warn({ err: loggableError(err), path }, 'error after the response started');
      res.destroy();
      return;
    }
    const appError = toAppError(err);
    // A 503 BUSY is the server pacing its clients, not a fault, and is not logged; a 503 NOT_READY says that
    // something the request needs is unreachable, which is logged once a while per kind.
    if (isRedisUnavailable(err)) {
      const e = loggableError(redisCause(err));
      unavailable.write('error', e.message, { err: e }, 'requests fail: Redis is unreachable');
    } else if (appError.code === 'NOT_READY') {
      const fields = { err: loggableError(err), method: req.method, path };
      unavailable.write('error', appError.message, fields, 'request failed');
    } else if (appError.status >= 500 && appError.code !== 'BUSY') {
      options.log.error({ err: loggableError(err), method: req.method, path }, 'request failed');
    }
    if (appError.status === 503 && res.getHeader('Retry-After') === undefined)
      res.setHeader('Retry-After', String(DEFAULT_RETRY_AFTER_S));
    const body = JSON.stringify(appError.toJSON());
    res.writeHead(appError.status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
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

/**
 * What ioredis and Redis say while Redis cannot serve: no connection, or (on a Redis Cluster) a failover in
 * progress: the cluster down until a replica is promoted (CLUSTERDOWN, TRYAGAIN, MASTERDOWN), a replica not
 * yet a primary (READONLY), a node still loading its data (LOADING), a client still learning the new slot
 * map (redirections used up, no node answering).
 */
const REDIS_UNAVAILABLE = new RegExp(
  [
    'Connection is closed',
    "Stream isn't writeable",
    'Command timed out',
    'ECONNREFUSED',
    'ETIMEDOUT',
    'ECONNRESET',
    'EPIPE',
    'CLUSTERDOWN',
    'TRYAGAIN',
    'MASTERDOWN',
    'READONLY',
    'LOADING',
    'Too many Cluster redirections',
    'Failed to refresh slots cache',
    'None of startup nodes is available',
  ].join('|'),
);

/**
 * Whether `err` (or an error it wraps as its `cause`, as a Lua script's failure does) says that Redis could
 * not be reached: no connection, retries used up, no reply within REDIS_COMMAND_TIMEOUT_MS, or a Redis
 * Cluster failing over (REDIS_UNAVAILABLE).
 */
export function isRedisUnavailable(err: unknown): boolean {
  return redisCause(err) !== undefined;
}

function redisCause(err: unknown): Error | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (
      e.name === 'MaxRetriesPerRequestError' ||
      e.name === 'ClusterAllFailedError' ||
      REDIS_UNAVAILABLE.test(e.message)
    ) {
      return e;
    }
  }
  return undefined;
}
