import express, { type RequestHandler } from 'express';
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

/**
 * Parses a JSON body (gzip and deflate accepted) and turns every body-parser failure into an AppError at the
 * source, so that the error handler never has to guess which route a parser error came from: a body that
 * is not JSON by its content type is 415 UNSUPPORTED_MEDIA_TYPE, malformed JSON 400 REQUEST_INVALID, a body
 * over the limit `tooLarge`.
 */
export function jsonBody(options: JsonBodyOptions): RequestHandler {
  const parse = express.json({ limit: options.limit, strict: true, type: () => true });
  return (req, res, next) => {
    // An empty body (Content-Length: 0, as fetch sends for a bodiless POST) needs no content type.
    const empty = req.get('content-length') === '0' && req.get('transfer-encoding') === undefined;
    if (!empty && req.is(['application/json', 'application/*+json']) === false) {
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'the body must be JSON (Content-Type: application/json)', [
        { path: 'content-type', message: `got ${req.get('content-type') ?? 'none'}` },
      ]);
    }
    parse(req, res, (err?: unknown) => {
      if (err) return next(translate(err, options));
      if (req.body === undefined && options.optional) req.body = {};
      next();
    });
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
