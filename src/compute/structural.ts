import type { Node } from '../generated/computation';
import { OpError } from './ops/op';
import {
  assignabilityError,
  formatType,
  structType,
  tensorLeaves,
  tensorType,
  type Signature,
  type TffType,
} from './types';

/** Ops the registry does not hold: the checker and interpreter give them their meaning. */
export const STRUCTURAL_OPS = ['struct', 'field', 'call', 'fold', 'repeat', 'value_and_grad'] as const;

// "__proto__" is reserved in every name of a plan (see schemas/computation.schema.json).
const fnName = { type: 'string', pattern: '^(?!__proto__$)[A-Za-z_][A-Za-z0-9_.]*$' };

/** The JSON Schema of each structural op's `attrs`, validated before the op is typed. */
export const STRUCTURAL_ATTRS: Record<(typeof STRUCTURAL_OPS)[number], object> = {
  struct: {
    type: 'object',
    additionalProperties: false,
    properties: {
      names: {
        type: 'array',
        maxItems: 1024,
        items: { type: ['string', 'null'], pattern: '^(?!__proto__$)[A-Za-z_][A-Za-z0-9_]*$' },
      },
    },
  },
  field: {
    type: 'object',
    additionalProperties: false,
    properties: { name: { type: 'string' }, index: { type: 'integer', minimum: 0 } },
    oneOf: [{ required: ['name'] }, { required: ['index'] }],
  },
  call: { type: 'object', additionalProperties: false, required: ['fn'], properties: { fn: fnName } },
  fold: {
    type: 'object',
    additionalProperties: false,
    required: ['fn'],
    properties: {
      fn: fnName,
      epochs: { type: 'integer', minimum: 1 },
      shuffle_seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
    },
  },
  repeat: {
    type: 'object',
    additionalProperties: false,
    required: ['fn', 'count'],
    properties: { fn: fnName, count: { type: 'integer', minimum: 0 } },
  },
  value_and_grad: {
    type: 'object',
    additionalProperties: false,
    required: ['fn'],
    properties: { fn: fnName },
  },
};

const STRUCTURAL_ATTR_SCHEMAS: ReadonlyMap<string, object> = new Map(Object.entries(STRUCTURAL_ATTRS));

/**
 * The attrs schema of a structural op, or undefined for any other op name. A Map lookup, so that an op named
 * like an Object.prototype member ("constructor") is simply not structural.
 */
export function structuralAttrs(op: string): object | undefined {
  return STRUCTURAL_ATTR_SCHEMAS.get(op);
}

/**
 * What typing a structural node needs from the checker running it; the checker keeps the signatures, depths
 * and limits, so that functions are checked once per plan and recursion is caught in one place.
 */
export interface StructuralScope {
  /** The signature of a named function and the call depth a node calling it reaches; throws if unknown. */
  callee(name: string): { sig: Signature; depth: number };
  /** Throws an OpError if a loop attribute's count is above the limit. */
  checkLoopCount(n: number, attr: string): void;
}

/**
 * Types a structural node (`STRUCTURAL_OPS`) whose attrs have passed their schema: its result type and the
 * call depth it reaches. Throws OpError when the args do not fit; `scope.callee` may throw its own errors.
 */
export function inferStructural(
  node: Node,
  args: readonly TffType[],
  attrs: Record<string, unknown>,
  scope: StructuralScope,
): { type: TffType; calleeDepth: number } {
  const arity = (n: number) => {
    if (args.length !== n) throw new OpError(`takes ${n} args, got ${args.length}`);
  };
  const callee = (): { sig: Signature; depth: number } => scope.callee(attrs.fn as string);
  const fits = (slot: TffType, value: TffType, what: string) => {
    const why = assignabilityError(slot, value);
    if (why) throw new OpError(`${what}: ${why}`);
  };
  const pairParameter = (sig: Signature, what: string): [TffType, TffType] => {
    const p = sig.parameter;
    if (!p || p.kind !== 'struct' || p.fields.length !== 2) {
      throw new OpError(
        `function "${String(attrs.fn)}" must take a 2-field struct <${what}>, takes ${p ? formatType(p) : 'no parameter'}`,
      );
    }
    return [p.fields[0]!.type, p.fields[1]!.type];
  };

  switch (node.op) {
    case 'struct': {
      const names = attrs.names as (string | null)[] | undefined;
      if (names && names.length !== args.length)
        throw new OpError(`attr names has ${names.length} entries for ${args.length} args`);
      const named = (names ?? []).filter((n): n is string => !!n);
      if (new Set(named).size !== named.length) throw new OpError('attr names: field names must be unique');
      return { type: structType(args.map((t, i) => [names?.[i] ?? undefined, t])), calleeDepth: 0 };
    }
    case 'field': {
      arity(1);
      const s = args[0]!;
      if (s.kind !== 'struct') throw new OpError(`arg 0: expected a struct, got ${formatType(s)}`);
      const field =
        attrs.name !== undefined
          ? s.fields.find((f) => f.name === attrs.name)
          : s.fields[attrs.index as number];
      if (!field) {
        const which = attrs.name !== undefined ? `"${String(attrs.name)}"` : `index ${String(attrs.index)}`;
        throw new OpError(`no field ${which} in ${formatType(s)}`);
      }
      return { type: field.type, calleeDepth: 0 };
    }
    case 'call': {
      const { sig, depth } = callee();
      if (sig.parameter) {
        arity(1);
        fits(sig.parameter, args[0]!, `arg 0 does not fit function "${String(attrs.fn)}"`);
      } else arity(0);
      return { type: sig.result, calleeDepth: depth };
    }
    case 'fold': {
      arity(2);
      const { sig, depth } = callee();
      scope.checkLoopCount((attrs.epochs as number | undefined) ?? 1, 'epochs');
      const [acc, elem] = pairParameter(sig, 'accumulator, element');
      const seq = args[0]!;
      if (seq.kind !== 'sequence') throw new OpError(`arg 0: expected a sequence, got ${formatType(seq)}`);
      fits(acc, args[1]!, 'arg 1 (initial accumulator)');
      fits(elem, seq.element, 'the sequence element');
      if (attrs.shuffle_seed !== undefined && !batched(seq.element)) {
        // Reshuffling deals examples, the first dimension of every tensor of a batch, between batches.
        throw new OpError(
          `attr shuffle_seed: the sequence element ${formatType(seq.element)} is not a batch: every tensor of it needs the batch as its first dimension (no scalars, no sequences)`,
        );
      }
      fits(
        acc,
        sig.result,
        `the result of function "${String(attrs.fn)}" cannot be fed back as the accumulator`,
      );
      return { type: acc, calleeDepth: depth };
    }
    case 'repeat': {
      arity(1);
      const { sig, depth } = callee();
      scope.checkLoopCount(attrs.count as number, 'count');
      if (!sig.parameter) throw new OpError(`function "${String(attrs.fn)}" must take the loop state`);
      fits(sig.parameter, args[0]!, 'arg 0 (initial state)');
      fits(
        sig.parameter,
        sig.result,
        `the result of function "${String(attrs.fn)}" cannot be fed back as the state`,
      );
      return { type: sig.parameter, calleeDepth: depth };
    }
    case 'value_and_grad': {
      arity(2);
      const { sig, depth } = callee();
      const [params, rest] = pairParameter(sig, 'params, rest');
      fits(params, args[0]!, 'arg 0 (params)');
      fits(rest, args[1]!, 'arg 1');
      const r = sig.result;
      if (r.kind !== 'tensor' || r.dtype !== 'float32' || r.shape.length !== 0) {
        throw new OpError(
          `function "${String(attrs.fn)}" must return a float32 scalar to be differentiated, returns ${formatType(r)}`,
        );
      }
      let leaves;
      try {
        leaves = tensorLeaves(params);
      } catch {
        throw new OpError(`params ${formatType(params)} must be tensors or structs of tensors`);
      }
      const bad = leaves.find((l) => l.type.dtype !== 'float32');
      if (bad)
        throw new OpError(
          `params: ${bad.path.join('.') || 'value'} is ${bad.type.dtype}, only float32 can be differentiated`,
        );
      return {
        type: structType([
          ['value', tensorType('float32', [])],
          ['grad', params],
        ]),
        calleeDepth: depth,
      };
    }
  }
  throw new OpError(`unknown op "${node.op}"`);
}

/** Whether a type is a batch: tensors of rank 1 or more, alone or in structs (what fold reshuffles). */
function batched(t: TffType): boolean {
  if (t.kind === 'tensor') return t.shape.length > 0;
  if (t.kind === 'struct') return t.fields.every((f) => batched(f.type));
  return false;
}
