import { isAssignable } from '../types';
import {
  inferError,
  mismatch,
  runError,
  runOp,
  schemaErrors,
  type BadCase,
  type OkCase,
  type RunErrorCase,
} from './testing';

/**
 * Registers the table-driven tests every op family shares: each good case passes its attrs schema, infers
 * the expected type, runs a kernel whose actual type fits it, gives the expected values and leaks nothing;
 * each bad case passes the schema but fails inference with the expected message; each run-error case fails
 * in the kernel with the expected message.
 */
export function testOpTable(tables: {
  readonly ok: readonly OkCase[];
  readonly bad?: readonly BadCase[];
  readonly runErrors?: readonly RunErrorCase[];
}): void {
  test.each(tables.ok)('$op: $what', (c) => {
    expect(schemaErrors(c.op, c.attrs ?? {})).toEqual([]);
    const r = runOp(c.op, c.args, c.attrs);
    expect(r.inferred).toEqual(c.type);
    expect(isAssignable(r.inferred, r.actual)).toBe(true);
    expect(mismatch(r.value, c.value, c.tol)).toBeNull();
    expect(r.leaked).toBe(0);
  });
  if (tables.bad?.length) {
    test.each(tables.bad)('$op rejects $what', (c) => {
      expect(schemaErrors(c.op, c.attrs ?? {})).toEqual([]);
      expect(inferError(c.op, c.types, c.attrs)).toMatch(c.error);
    });
  }
  if (tables.runErrors?.length) {
    test.each(tables.runErrors)('$op kernel rejects $what', (c) => {
      expect(runError(c.op, c.args, c.attrs)).toMatch(c.error);
    });
  }
}
