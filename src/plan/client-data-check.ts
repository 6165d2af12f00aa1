import { formatType, isInt32, typeProblem, type TffType } from '../compute/types';
import type { ErrorDetail } from '../errors';
import type { ClientDataSpec } from '../generated/plan';

/**
 * Checks a plan's client data spec, so that a plan every client would fail on is refused at submission:
 * `element` (the type of one batch) is a tensor or a struct of tensors, nesting within the limit, with unique
 * field names at every level; every tensor has a leading batch dimension that is unknown (`null`) or equal
 * to `batch_size`, and only known dimensions after it (the per-example shape); a declared `range` is
 * `[min, max]` with `min <= max`, on a float32 or int32 tensor, with int32 bounds inside int32.
 * Each problem carries the JSON pointer of the offending part of the spec, which sits at `at` (a program
 * has one spec per collection, `/client_data/train`) and is named `label` in messages.
 */
export function clientDataErrors(
  spec: ClientDataSpec,
  at = '/client_data',
  label = 'client_data',
): ErrorDetail[] {
  const base = `${at}/element`;
  const problem = typeProblem(spec.element);
  if (problem) return [{ path: base + problem.pointer, message: `${label}.element: ${problem.message}` }];
  const errors: ErrorDetail[] = [];
  const walk = (t: TffType, pointer: string, inner: string): void => {
    const where = `${label}.element${inner ? ` ${inner}` : ''}`;
    switch (t.kind) {
      case 'sequence':
        errors.push({
          path: pointer,
          message: `${where}: a batch holds tensors or structs of tensors, not a sequence ${formatType(t)}`,
        });
        return;
      case 'struct':
        t.fields.forEach((f, i) =>
          walk(
            f.type,
            `${pointer}/fields/${i}/type`,
            inner ? `${inner}.${f.name ?? i}` : (f.name ?? String(i)),
          ),
        );
        return;
      case 'tensor': {
        const [batch, ...rest] = t.shape;
        if (batch === undefined) {
          errors.push({
            path: `${pointer}/shape`,
            message: `${where}: ${formatType(t)} has no leading batch dimension (use null, or batch_size ${spec.batch_size})`,
          });
        } else if (batch !== null && batch !== spec.batch_size) {
          errors.push({
            path: `${pointer}/shape/0`,
            message: `${where}: batch dimension ${batch} of ${formatType(t)} is not null and not batch_size ${spec.batch_size}`,
          });
        }
        const open = rest.findIndex((d) => d === null);
        if (open >= 0) {
          errors.push({
            path: `${pointer}/shape/${open + 1}`,
            message: `${where}: ${formatType(t)} has an unknown dimension after the batch dimension; one example's shape must be known`,
          });
        }
        const why = t.range ? rangeError(t.range, t.dtype) : null;
        if (why) errors.push({ path: `${pointer}/range`, message: `${where}: range ${why}` });
        return;
      }
    }
  };
  walk(spec.element, base, '');
  return errors;
}

/** Why a declared value range does not fit its dtype, or null. */
export function rangeError(range: readonly number[], dtype: string): string | null {
  const [min, max] = range as [number, number];
  if (dtype === 'bool') return 'cannot be declared on a bool tensor (its values are 0 and 1)';
  if (!(min <= max)) return `[${min}, ${max}] is empty: min must not exceed max`;
  if (dtype === 'int32' && !(isInt32(min) && isInt32(max)))
    return `[${min}, ${max}] must hold int32 integers for an int32 tensor`;
  return null;
}
