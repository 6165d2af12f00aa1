import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Request, type RequestHandler, type Response } from 'express';
import typeis from 'type-is';
import { AppError, type ErrorCode } from '../../errors';

/** Options of {@link jsonBody}. */
export interface JsonBodyOptions {
  /** Largest accepted body in bytes (after decompression). */
  readonly limit: number;
  /** The code of a body over the limit: each route says what "too large" means for it. */
  readonly tooLarge: ErrorCode;
  /** When there is no body at all, continue with `{}` instead of `undefined`. */
  readonly optional?: boolean;
}

/** The media types taken as JSON. */
const JSON_TYPES = ['application/json', 'application/*+json'];

/**
 * Reads a JSON body (gzip and deflate accepted) on Node's own request, for a route served ahead of express
 * (src/api/raw-routes.ts) as for the {@link jsonBody} middleware: the same parser, the same errors. A body
 * that is not JSON by its content type is 415 UNSUPPORTED_MEDIA_TYPE, malformed JSON 400 REQUEST_INVALID, a
 * body over the limit `tooLarge`. Resolves with the parsed body (`{}` for none when `optional`).
 */
export function readJsonBody(
  req: IncomingMessage,
  res: ServerResponse,
  options: JsonBodyOptions,
): Promise<unknown> {
  // An empty body (Content-Length: 0, as fetch sends for a bodiless POST) needs no content type.
  const empty = req.headers['content-length'] === '0' && req.headers['transfer-encoding'] === undefined;
  if (!empty && typeis(req, JSON_TYPES) === false) {
    return Promise.reject(
      new AppError('UNSUPPORTED_MEDIA_TYPE', 'the body must be JSON (Content-Type: application/json)', [
        { path: 'content-type', message: `got ${req.headers['content-type'] ?? 'none'}` },
      ]),
    );
  }
  const parse = parserOf(options.limit);
  return new Promise((resolve, reject) => {
    parse(req as Request, res as Response, (err?: unknown) => {
      if (err) return reject(translate(err, options));
      const body = (req as IncomingMessage & { body?: unknown }).body;
      resolve(body === undefined && options.optional ? {} : body);
    });
  });
}

/** Body parsers by limit: made once, as express.json is meant to be. */
const parsers = new Map<number, RequestHandler>();
function parserOf(limit: number): RequestHandler {
  let p = parsers.get(limit);
  if (!p) parsers.set(limit, (p = express.json({ limit, strict: true, type: () => true })));
  return p;
}

/** {@link readJsonBody} as express middleware: the body in `req.body`. */
export function jsonBody(options: JsonBodyOptions): RequestHandler {
  return (req, res, next) => {
    readJsonBody(req, res, options).then((body) => {
      req.body = body;
      next();
    }, next);
  };
}

function translate(err: unknown, options: JsonBodyOptions): unknown {
  const type = (err as { type?: unknown }).type;
  switch (type) {
    case 'entity.too.large':
      return new AppError(options.tooLarge, `the body is larger than ${options.limit} bytes`, [
        { path: '', message: `limit ${options.limit} bytes` },
      ]);
    case 'entity.parse.failed':
      return new AppError('REQUEST_INVALID', 'the body is not valid JSON', [
        { path: '', message: (err as Error).message },
      ]);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new AppError('UNSUPPORTED_MEDIA_TYPE', (err as Error).message);
    default:
      // A decompression failure (zlib errors carry a Z_* code), a size mismatch, an aborted request.
      return typeof type === 'string' || isZlibError(err)
        ? new AppError('REQUEST_INVALID', 'the body could not be read', [
            { path: '', message: (err as Error).message },
          ])
        : err;
  }
}

/** Whether an error comes from zlib (a truncated or corrupt compressed body). */
export function isZlibError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}
