import { AppError } from '../errors';

/** Asserts `fn` throws an AppError with `code` and a detail at `path`; returns that detail's message. */
export function rejects(fn: () => unknown, code: string, path: string): string {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(AppError);
  const err = caught as AppError;
  expect(err.code).toBe(code);
  const detail = err.details.find((d) => d.path === path);
  expect(detail).toBeDefined();
  return detail!.message;
}
