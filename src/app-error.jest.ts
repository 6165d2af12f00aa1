import { AppError } from './errors';

/**
 * The AppError `fn` throws. Anything else it throws is rethrown, so that a bug (a TypeError) never passes
 * for a refusal; throwing nothing fails the test.
 */
export function appErrorOf(fn: () => unknown): AppError {
  try {
    fn();
  } catch (e) {
    if (e instanceof AppError) return e;
    throw e;
  }
  throw new Error('expected an AppError, nothing was thrown');
}

/** The AppError `promise` rejects with; as {@link appErrorOf}, for asynchronous code. */
export async function appErrorOfAsync(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof AppError) return e;
    throw e;
  }
  throw new Error('expected an AppError, the promise resolved');
}
