import type { RequestHandler } from 'express';
import { AppError } from '../../errors';

/** The last route: anything no route matched is 404 NOT_FOUND in the common error shape. */
export function notFound(): RequestHandler {
  return (req) => {
    throw new AppError('NOT_FOUND', `no route ${req.method} ${req.path}`);
  };
}
