import { ARITHMETIC_OPS } from './arithmetic';
import { CAST_OPS } from './cast';
import { SELECTION_OPS } from './comparison';
import { CONSTANT_OPS } from './constants';
import { INDEXING_OPS } from './indexing';
import { JOIN_OPS } from './joins';
import { LINALG_OPS } from './linalg';
import { NN_OPS } from './nn';
import type { OpDef } from './op';
import { RANDOM_OPS } from './random';
import { REDUCTION_OPS } from './reductions';
import { SHAPE_OPS } from './shapes';
import { UNARY_OPS } from './unary';

export { OpError, type KernelContext, type OpDef } from './op';
export { OpLimitError } from './shape-infer';
export { IntOverflowError } from './int-overflow';

/** The ops the checker and interpreter handle themselves; no tensor op may take these names. */
export const STRUCTURAL_OP_NAMES: readonly string[] = [
  'call',
  'field',
  'fold',
  'repeat',
  'struct',
  'value_and_grad',
];

const ALL: readonly OpDef[] = [
  ...CONSTANT_OPS,
  ...RANDOM_OPS,
  ...ARITHMETIC_OPS,
  ...UNARY_OPS,
  ...SELECTION_OPS,
  ...CAST_OPS,
  ...REDUCTION_OPS,
  ...LINALG_OPS,
  ...SHAPE_OPS,
  ...INDEXING_OPS,
  ...JOIN_OPS,
  ...NN_OPS,
];

const REGISTRY: ReadonlyMap<string, OpDef> = (() => {
  const m = new Map<string, OpDef>();
  for (const op of ALL) {
    // A clash would silently shadow an op, so fail at load time instead.
    if (m.has(op.name) || STRUCTURAL_OP_NAMES.includes(op.name))
      throw new Error(`op "${op.name}" is defined twice`);
    m.set(op.name, Object.freeze(op));
  }
  return m;
})();

/** The tensor op called `name`, or undefined (structural ops are not in the registry). */
export function getOp(name: string): OpDef | undefined {
  return REGISTRY.get(name);
}

/** The names of every tensor op, sorted. */
export const OP_NAMES: readonly string[] = Object.freeze([...REGISTRY.keys()].sort());
