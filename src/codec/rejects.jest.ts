import { appErrorOf } from '../app-error.jest';

/** Asserts `fn` throws an AppError with `code` and a detail at `path`; returns that detail's message. */
export function rejects(fn: () => unknown, code: string, path: string): string {
  const err = appErrorOf(fn);
  expect(err.code).toBe(code);
  const detail = err.details.find((d) => d.path === path);
  expect(detail).toBeDefined();
  return detail!.message;
}
