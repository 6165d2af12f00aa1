import { assignabilityError, formatType, tensorLeaves, type Signature, type TffType } from '../compute/types';

/** Reports one problem of the computation in `slot`; the caller knows where the slot sits and its name. */
export type SlotFailure = (slot: string, message: string) => void;

/**
 * The checks that tie typed computations together, as TFF's `forms.py` words them, reporting through
 * `fail`: a plan's form slots and a program's aggregate steps are checked by the same rules and messages.
 */
export function formFitters(fail: SlotFailure) {
  return {
    /** `to` (a parameter or a field of one) accepts a value of type `from`. */
    fits(slot: string, what: string, to: TffType | undefined, from: TffType): void {
      if (!to) return fail(slot, `${what} is missing`);
      const why = assignabilityError(to, from);
      if (why) fail(slot, `${what} does not accept ${formatType(from)}: ${why}`);
    },
    noParameter(slot: string, s: Signature): void {
      if (s.parameter) fail(slot, `must take no parameter, takes ${formatType(s.parameter)}`);
    },
    /** The field types of a parameter that must be a `count`-field struct `<names>`, or undefined. */
    pair(slot: string, s: Signature, count: number, names: string): TffType[] | undefined {
      const p = s.parameter;
      if (!p || p.kind !== 'struct' || p.fields.length !== count) {
        fail(
          slot,
          `parameter must be a ${count}-field struct <${names}>, is ${p ? formatType(p) : 'missing'}`,
        );
        return undefined;
      }
      return p.fields.map((f) => f.type);
    },
    staticShapes(slot: string, what: string, t: TffType): void {
      const why = staticShapeError(t);
      if (why) fail(slot, `${what} ${formatType(t)} ${why}`);
    },
  };
}

/** The four computations of an aggregation, typed as in the MapReduce form. */
export interface AggregationSignatures {
  readonly zero: Signature;
  readonly accumulate: Signature;
  readonly merge: Signature;
  readonly report: Signature;
}

/**
 * Checks `zero: ( -> A)`, `accumulate: (<A, U> -> A)`, `merge: (<A, A> -> A)` and `report: (A -> R)` for the
 * aggregated type U (unknown when the value's own type could not be derived) and returns A and R.
 */
export function aggregationTypes(
  sigs: AggregationSignatures,
  U: TffType | undefined,
  fail: SlotFailure,
): { readonly A: TffType; readonly R: TffType } {
  const { fits, noParameter, pair, staticShapes } = formFitters(fail);
  const { zero, accumulate, merge, report } = sigs;
  const A = zero.result;
  noParameter('zero', zero);
  staticShapes('zero', 'the accumulator', A);
  const accIn = pair('accumulate', accumulate, 2, 'A, U');
  if (accIn) {
    fits('accumulate', 'the first parameter field (accumulator)', accIn[0], A);
    if (U) fits('accumulate', 'the second parameter field (update)', accIn[1], U);
  }
  fits('accumulate', "zero's result type", A, accumulate.result);
  const mergeIn = pair('merge', merge, 2, 'A, A');
  if (mergeIn) {
    fits('merge', 'the first parameter field', mergeIn[0], accumulate.result);
    fits('merge', 'the second parameter field', mergeIn[1], accumulate.result);
  }
  fits('merge', "zero's result type", A, merge.result);
  fits('report', 'the parameter', report.parameter, merge.result);
  const R = report.result;
  staticShapes('report', 'the aggregate R', R);
  return { A, R };
}

/** The tensors of a type, or undefined when it holds a sequence. */
export function safeLeaves(t: TffType) {
  try {
    return tensorLeaves(t);
  } catch {
    return undefined;
  }
}

/** Values that cross processes must have fully known shapes and no sequences: why `t` does not, or null. */
export function staticShapeError(t: TffType): string | null {
  const leaves = safeLeaves(t);
  if (!leaves) return 'must not contain a sequence';
  const open = leaves.find((l) => l.type.shape.some((d) => d === null));
  return open
    ? `must have fully known shapes (${open.path.join('.') || 'the tensor'} has an unknown dimension)`
    : null;
}
