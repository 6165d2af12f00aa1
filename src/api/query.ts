import { AppError } from '../errors';

/** A query parameter that must be a non-negative integer when given (REQUEST_INVALID otherwise). */
export function intParam(v: unknown, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || !/^[0-9]{1,9}$/.test(v) || !Number.isSafeInteger(n)) {
    throw new AppError('REQUEST_INVALID', `query ${name} must be a non-negative integer`, [
      { path: name, message: 'a non-negative integer' },
    ]);
  }
  return n;
}
