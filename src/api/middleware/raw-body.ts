import express, { type Request, type RequestHandler, type Response } from 'express';
import { AppError } from '../../errors';
import { isZlibError } from './json-body';

/** Options of {@link rawBody}. */
export interface RawBodyOptions {
  /** Largest accepted body in bytes after decompression (`MAX_UPLOAD_BYTES`). */
  readonly limit: number;
  /**
   * Told the bytes of the body received so far, as sent (before decompression), as they arrive; an error
   * it answers stops the reading and is passed on (the caller answers, and ends the connection).
   */
  readonly meter?: (req: Request, res: Response, bytes: number) => Error | undefined;
}

/**
 * Reads a binary body into `req.body` as a Buffer (an empty one when there is no body), inflating
 * `Content-Encoding: gzip`/`deflate`/`br`. The limit applies to the decompressed bytes, so a compression
 * bomb stops at the limit. Failures become AppErrors: over the limit 413 UPLOAD_TOO_LARGE; a truncated or
 * corrupt compressed stream, or fewer bytes than Content-Length, 400 BUNDLE_MALFORMED; an unknown content
 * encoding 415 UNSUPPORTED_MEDIA_TYPE. The caller checks the content type.
 */
export function rawBody(options: RawBodyOptions): RequestHandler {
  const parse = express.raw({ type: () => true, limit: options.limit, inflate: true });
  return (req, res, next) => {
    let settled = false;
    const done = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      next(err);
    };
    parse(req, res, (err?: unknown) => {
      if (err) return done(translate(err, options.limit));
      if (!Buffer.isBuffer(req.body)) req.body = Buffer.alloc(0);
      done();
    });
    const { meter } = options;
    // The parser attached its reader synchronously; a second 'data' listener sees the same chunks. Without
    // a reader (no body) nothing is metered, so nothing here starts the stream flowing.
    if (!meter || settled || req.listenerCount('data') === 0) return;
    let received = 0;
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      const stop = meter(req, res, received);
      if (!stop) return;
      req.removeListener('data', onData);
      // Nothing more is read; what was buffered goes with the request once the connection ends.
      req.unpipe();
      req.pause();
      done(stop);
    };
    req.on('data', onData);
    req.once('end', () => req.removeListener('data', onData));
  };
}

function translate(err: unknown, limit: number): unknown {
  const type = (err as { type?: unknown }).type;
  if (type === 'entity.too.large') {
    return new AppError(
      'UPLOAD_TOO_LARGE',
      `the upload is larger than ${limit} bytes (after decompression)`,
      [{ path: '', message: `limit ${limit} bytes` }],
    );
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return new AppError('UNSUPPORTED_MEDIA_TYPE', (err as Error).message, [
      { path: 'content-encoding', message: 'use gzip, deflate, br or none' },
    ]);
  }
  if (isZlibError(err) || type === 'request.size.invalid') {
    return new AppError('BUNDLE_MALFORMED', 'the upload is truncated or its compression is corrupt', [
      { path: '', message: (err as Error).message },
    ]);
  }
  if (typeof type === 'string') return new AppError('REQUEST_INVALID', (err as Error).message);
  return err;
}
