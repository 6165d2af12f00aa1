import { checkSecureSumParams, SECURE_SUM_SLOTS, type SecureSumKind } from '../aggregation/secure-sum';
import { calledFunction } from '../compute/checker';
import { isInt32, tensorLeaves, type TffType } from '../compute/types';
import { AppError, type ErrorDetail } from '../errors';
import type { Computation } from '../generated/computation';
import type { Plan } from '../generated/plan';

/** The kinds in the order of V1, V2, V3. */
const KINDS: readonly SecureSumKind[] = ['bitwidth', 'max_input', 'modulus'];

/** A statically known value: an int32 or float32 scalar (with the node that made it), or a struct of them. */
type Folded =
  | { readonly kind: 'scalar'; readonly dtype: string; readonly value: number; readonly at: string }
  | { readonly kind: 'struct'; readonly fields: readonly { name?: string; value: Folded }[] };

/**
 * Checks the secure-sum parameters at submission wherever they are constants: each of the three parameter
 * computations whose result folds statically (consts, structs, fields, calls, casts and int32 scalar
 * arithmetic; anything else is left to the server's check when a round opens) must give values the server
 * accepts, by the server's own rule (`checkSecureSumParams`, so the two cannot drift). A problem points at the
 * node that produced the value. `V` are the form's secure-sum update types; an empty V takes no parameters.
 */
export function secureSumParamErrors(
  plan: Plan,
  V: readonly [TffType, TffType, TffType],
  maxCallDepth: number,
): ErrorDetail[] {
  const functions = new Map(Object.entries(plan.functions ?? {}));
  const errors: ErrorDetail[] = [];
  KINDS.forEach((kind, i) => {
    const slot = SECURE_SUM_SLOTS[kind];
    const leaves = tensorLeaves(V[i]!).length;
    if (leaves === 0) return;
    const folded = fold(plan.computations[slot], `/computations/${slot}`, undefined, functions, maxCallDepth);
    if (!folded) return;
    const scalars = scalarLeaves(folded);
    // One scalar applies to every tensor of V (as the server reads it); otherwise one per tensor.
    for (const [leaf, s] of (scalars.length === 1 ? scalars : scalars.slice(0, leaves)).entries()) {
      try {
        checkSecureSumParams(kind, [s.value]);
      } catch (e) {
        if (!(e instanceof AppError)) throw e;
        const which = scalars.length === 1 ? '' : ` for tensor ${leaf} of the secure-sum update`;
        errors.push({
          path: s.at,
          message: `${slot} gives ${s.value}${which}, which the server refuses: ${e.message.replace(/^.*; /, '')}`,
        });
      }
    }
  });
  return errors;
}

function scalarLeaves(v: Folded): Extract<Folded, { kind: 'scalar' }>[] {
  return v.kind === 'scalar' ? [v] : v.fields.flatMap((f) => scalarLeaves(f.value));
}

/** The value of `comp` applied to `arg`, when every node on the way to its result folds; else undefined. */
function fold(
  comp: Computation,
  pointer: string,
  arg: Folded | undefined,
  functions: ReadonlyMap<string, Computation>,
  depth: number,
): Folded | undefined {
  if (depth < 0) return undefined;
  const env = new Map<string, Folded | undefined>();
  if (comp.parameter) env.set(comp.parameter.name, arg);
  comp.nodes.forEach((node, i) => {
    const at = `${pointer}/nodes/${i}`;
    const args = (node.args ?? []).map((a) => env.get(a));
    const attrs = (node.attrs ?? {}) as Record<string, unknown>;
    let out: Folded | undefined;
    if (args.every((a) => a !== undefined)) {
      const fn = calledFunction(node);
      if (node.op === 'call' && fn !== undefined) {
        const callee = functions.get(fn);
        if (callee) out = fold(callee, `/functions/${fn}`, args[0], functions, depth - 1);
      } else {
        out = foldNode(node.op, args as Folded[], attrs, at);
      }
    }
    env.set(node.name, out);
  });
  return env.get(comp.result);
}

function foldNode(
  op: string,
  args: readonly Folded[],
  attrs: Record<string, unknown>,
  at: string,
): Folded | undefined {
  const scalar = (dtype: string, value: number): Folded | undefined =>
    dtype === 'int32' && !isInt32(value)
      ? undefined // would wrap at run time; leave it to the server
      : { kind: 'scalar', dtype, value, at };
  const ints = (): number[] | undefined =>
    args.every((a) => a.kind === 'scalar' && a.dtype === 'int32')
      ? args.map((a) => (a as { value: number }).value)
      : undefined;
  switch (op) {
    case 'const': {
      const { dtype, shape, value } = attrs as { dtype?: string; shape?: unknown[]; value?: unknown };
      const v = Array.isArray(value) && value.length === 1 ? value[0] : value;
      if (!Array.isArray(shape) || shape.length !== 0 || typeof v !== 'number' || typeof dtype !== 'string')
        return undefined;
      return scalar(dtype, v);
    }
    case 'struct': {
      const names = attrs.names as (string | null)[] | undefined;
      return { kind: 'struct', fields: args.map((value, i) => ({ name: names?.[i] ?? undefined, value })) };
    }
    case 'field': {
      const s = args[0];
      if (s?.kind !== 'struct') return undefined;
      const f =
        typeof attrs.name === 'string'
          ? s.fields.find((x) => x.name === attrs.name)
          : s.fields[attrs.index as number];
      return f?.value;
    }
    case 'cast': {
      const x = args[0];
      // Only exact casts: an integral float32 to int32, or a cast to the same dtype.
      if (x?.kind !== 'scalar' || (attrs.dtype !== 'int32' && attrs.dtype !== x.dtype)) return undefined;
      return scalar(attrs.dtype as string, x.value);
    }
    case 'neg':
    case 'abs': {
      const [x] = ints() ?? [];
      if (x === undefined || args.length !== 1) return undefined;
      return scalar('int32', op === 'neg' ? -x : Math.abs(x));
    }
    case 'add':
    case 'sub':
    case 'mul':
    case 'maximum':
    case 'minimum': {
      const xs = ints();
      if (!xs || xs.length !== 2) return undefined;
      const [a, b] = xs as [number, number];
      const value = { add: a + b, sub: a - b, mul: a * b, maximum: Math.max(a, b), minimum: Math.min(a, b) }[
        op
      ];
      return scalar('int32', value);
    }
    default:
      return undefined;
  }
}
