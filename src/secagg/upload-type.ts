/**
 * The bundle a client uploads in a round running SecAgg: work's result `<U, V1, V2, V3>` with every tensor
 * of V1..V3 replaced by its masked residues as int32 [2, n] lanes (src/secagg/masks.ts, `toLanes`), under
 * the same names, so that U travels exactly as in a plain round.
 */
import { tensorLeaves, tensorType, type TffType } from '../compute/types';

const cache = new WeakMap<TffType, TffType>();

/** The masked upload type of a plan whose work returns `uploadType` (`<U, V1, V2, V3>`). */
export function maskedUploadType(uploadType: TffType): TffType {
  let masked = cache.get(uploadType);
  if (!masked) {
    if (uploadType.kind !== 'struct' || uploadType.fields.length !== 4) {
      throw new Error('the upload type is not <U, V1, V2, V3>');
    }
    masked = {
      ...uploadType,
      fields: uploadType.fields.map((f, k) => (k === 0 ? f : { ...f, type: lanesOf(f.type) })),
    };
    cache.set(uploadType, masked);
  }
  return masked;
}

/** A type with every tensor replaced by int32 [2, number of elements]. */
function lanesOf(type: TffType): TffType {
  if (type.kind === 'struct')
    return { ...type, fields: type.fields.map((f) => ({ ...f, type: lanesOf(f.type) })) };
  const [leaf] = tensorLeaves(type);
  const n = leaf!.type.shape.reduce<number>((a, d) => a * (d ?? 0), 1);
  return tensorType('int32', [2, n]);
}
