import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AppError } from '../../errors';
import { bearerToken } from '../../rounds/tokens';

/** Options of {@link operatorAuth}. */
export interface OperatorAuthOptions {
  /** The operator token (`OPERATOR_TOKEN`). */
  readonly token: string;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * Requires `Authorization: Bearer <OPERATOR_TOKEN>`; else 401 UNAUTHORIZED. Both sides are hashed before the
 * constant-time comparison so that neither the token's content nor its length leaks through timing
 * (`timingSafeEqual` itself needs equal lengths).
 */
export function operatorAuth(options: OperatorAuthOptions): RequestHandler {
  if (!options.token) throw new Error('operatorAuth needs a non-empty token');
  const expected = digest(options.token);
  return (req, res, next) => {
    const given = bearerToken(req.get('authorization'));
    if (given === undefined || !timingSafeEqual(digest(given), expected)) {
      res.set('WWW-Authenticate', 'Bearer realm="roundhouse-operator"');
      throw new AppError(
        'UNAUTHORIZED',
        given === undefined
          ? 'operator endpoints need Authorization: Bearer <OPERATOR_TOKEN>'
          : 'the operator token is not valid',
      );
    }
    next();
  };
}
