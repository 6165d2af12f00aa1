import type { Computation, Node } from '../../generated/computation';
import { compileSchema, type SchemaValidator } from '../../schema-validation';
import { getOp } from '../ops';
import { OpError } from '../ops/op';
import {
  assignabilityError,
  formatType,
  isFullyDefined,
  structType,
  tensorLeaves,
  tensorType,
  type Dtype,
  type Shape,
  type StructType,
  type TensorType,
  type TffType,
} from '../types';
import { BuildError, type FnRef, type Handle } from './handle';

/** An argument of a tensor op: a handle, or a number that becomes a scalar const of the other args' dtype. */
export type Operand = Handle | number;

/** The fields of a `struct` node: named (an object, in key order), unnamed (an array) or explicit pairs. */
export type StructFields =
  Readonly<Record<string, Handle>> | readonly Handle[] | readonly (readonly [string | undefined, Handle])[];

// The schemas' name patterns; "__proto__" is reserved (an object built by assignment would lose it).
const NODE_NAME = /^(?!__proto__$)[A-Za-z_][A-Za-z0-9_.]*$/;
const FIELD_NAME = /^(?!__proto__$)[A-Za-z_][A-Za-z0-9_]*$/;
const STRUCTURAL = new Set(['struct', 'field', 'call', 'fold', 'repeat', 'value_and_grad']);

// Compiled once per op: the builder validates attrs exactly as the checker will, but at authoring time.
const attrValidators = new Map<string, SchemaValidator>();

/**
 * Records the nodes of one computation and tracks the type of every value, so that an ill-typed op fails
 * while the plan is being written, with a message naming the computation, the node and the op. Tensor ops
 * are typed by the op registry's `infer`; structural ops by the rules of docs/ir.md.
 */
export class BaseBuilder {
  private readonly nodes: Node[] = [];
  private readonly names = new Set<string>();
  private readonly memo = new Map<string, Handle>();
  private readonly called = new Set<FnRef>();
  private counter = 0;
  private usesServerOnly = false;
  private readonly parameterHandle: Handle | undefined;

  constructor(
    /** Names the computation in errors, e.g. `work` or `function loss`. */
    readonly label: string,
    parameterType?: TffType,
    private readonly parameterName = 'arg',
  ) {
    if (parameterType) {
      this.names.add(parameterName);
      this.parameterHandle = { name: parameterName, type: parameterType, owner: label };
    }
  }

  /** The computation's parameter; throws for a computation declared without one. */
  get param(): Handle {
    if (!this.parameterHandle) throw new BuildError(`${this.label}: has no parameter`);
    return this.parameterHandle;
  }

  /** Whether this computation, or a function it calls, uses a server-only op. */
  get serverOnly(): boolean {
    return this.usesServerOnly || [...this.called].some((f) => f.serverOnly);
  }

  /** The functions this computation reaches directly. */
  get functionsCalled(): readonly FnRef[] {
    return [...this.called];
  }

  /** Adds a tensor op from the registry; numbers among `args` become scalar consts of the args' dtype. */
  op(
    name: string,
    args: readonly Operand[] = [],
    attrs: Record<string, unknown> = {},
    hint?: string,
  ): Handle {
    const def = getOp(name);
    if (!def) {
      const why = STRUCTURAL.has(name)
        ? `"${name}" is structural: use its own builder method`
        : `unknown op "${name}"`;
      throw new BuildError(`${this.label}: ${why}`);
    }
    const clean = stripUndefined(attrs);
    const handles = args.map((a, i) =>
      typeof a === 'number' ? this.scalar(a, literalDtype(name, args)) : this.own(a, name, i),
    );
    const nodeName = this.nextName(hint);
    const fail = (why: string): never => {
      const sig = handles.map((h) => `${h.name}: ${formatType(h.type)}`).join(', ');
      throw new BuildError(`${this.label}: node "${nodeName}" (${name}(${sig})): ${why}`);
    };
    let validate = attrValidators.get(name);
    if (!validate) {
      validate = compileSchema(def.attrs);
      attrValidators.set(name, validate);
    }
    if (!validate(clean)) {
      const e = validate.errors?.[0];
      fail(`attrs${e?.instancePath ?? ''} ${e?.message ?? 'are invalid'} (got ${JSON.stringify(clean)})`);
    }
    const arity = typeof def.arity === 'number' ? { min: def.arity, max: def.arity } : def.arity;
    if (handles.length < arity.min || (arity.max !== undefined && handles.length > arity.max)) {
      fail(
        `takes ${arity.min === arity.max ? arity.min : `${arity.min}..${arity.max ?? 'n'}`} args, got ${handles.length}`,
      );
    }
    const tensors = handles.map((h, i) =>
      h.type.kind === 'tensor' ? h.type : fail(`arg ${i}: expected a tensor, got ${formatType(h.type)}`),
    );
    let type: TensorType;
    try {
      type = def.infer(tensors, clean);
    } catch (e) {
      if (!(e instanceof OpError)) throw e;
      return fail(e.message);
    }
    if (def.serverOnly) this.usesServerOnly = true;
    return this.emit(nodeName, name, handles, clean, type);
  }

  /**
   * A constant tensor: `value` fills the shape, or is a flat array of its elements; `Infinity` and
   * `-Infinity` are float32's infinities.
   */
  const(
    dtype: Dtype,
    shape: Shape,
    value: number | boolean | readonly (number | boolean)[],
    hint?: string,
  ): Handle {
    if (!isFullyDefined(shape))
      throw new BuildError(`${this.label}: const shape ${JSON.stringify(shape)} must be fully known`);
    // JSON has no infinities: the IR spells them "inf" and "-inf" (float32 only; the op checks).
    const spell = (v: number | boolean): number | boolean | string =>
      v === Infinity ? 'inf' : v === -Infinity ? '-inf' : v;
    const attrs = {
      dtype,
      shape: [...shape],
      value: Array.isArray(value) ? value.map(spell) : spell(value as number | boolean),
    };
    // Identical constants are pure, so one node serves every use (keeps accumulate/update short).
    const key = `const:${JSON.stringify(attrs)}`;
    const known = this.memo.get(key);
    if (known) return known;
    const h = this.op('const', [], attrs, hint);
    this.memo.set(key, h);
    return h;
  }

  /** A scalar constant (float32 unless told). */
  scalar(
    value: number | boolean,
    dtype: Dtype = typeof value === 'boolean' ? 'bool' : 'float32',
    hint?: string,
  ): Handle {
    if (dtype === 'int32' && !Number.isInteger(value))
      throw new BuildError(`${this.label}: int32 scalar ${String(value)} is not an integer`);
    return this.const(dtype, [], value, hint);
  }

  /** A struct of values; an object gives named fields in key order, an array unnamed ones. */
  struct(fields: StructFields, hint?: string): Handle {
    const pairs: (readonly [string | undefined, Handle])[] = Array.isArray(fields)
      ? (fields as readonly (Handle | readonly [string | undefined, Handle])[]).map((f) =>
          Array.isArray(f)
            ? (f as readonly [string | undefined, Handle])
            : ([undefined, f as Handle] as const),
        )
      : Object.entries(fields as Record<string, Handle>);
    const nodeName = this.nextName(hint);
    const seen = new Set<string>();
    for (const [n] of pairs) {
      if (n === undefined) continue;
      if (!FIELD_NAME.test(n))
        throw new BuildError(
          `${this.label}: node "${nodeName}" (struct): field name "${n}" must match ${FIELD_NAME.source}`,
        );
      if (seen.has(n))
        throw new BuildError(`${this.label}: node "${nodeName}" (struct): field name "${n}" is used twice`);
      seen.add(n);
    }
    const handles = pairs.map(([, h], i) => this.own(h, 'struct', i));
    const type = structType(pairs.map(([n], i) => [n, handles[i]!.type]));
    const named = pairs.some(([n]) => n !== undefined);
    return this.emit(
      nodeName,
      'struct',
      handles,
      named ? { names: pairs.map(([n]) => n ?? null) } : {},
      type,
    );
  }

  /** One field of a struct, by name or index; repeated reads of the same field share one node. */
  field(h: Handle, key: string | number, hint?: string): Handle {
    this.own(h, 'field', 0);
    const s = h.type;
    const what = typeof key === 'number' ? `index ${key}` : `"${key}"`;
    if (s.kind !== 'struct')
      throw new BuildError(
        `${this.label}: field ${what} of "${h.name}": expected a struct, got ${formatType(s)}`,
      );
    const f = typeof key === 'number' ? s.fields[key] : s.fields.find((x) => x.name === key);
    if (!f) {
      const names = s.fields.map((x, i) => x.name ?? String(i)).join(', ');
      throw new BuildError(
        `${this.label}: field ${what} of "${h.name}": no such field in ${formatType(s)} (fields: ${names || 'none'})`,
      );
    }
    const memoKey = `field:${h.name}:${typeof key}:${key}`;
    const known = this.memo.get(memoKey);
    if (known) return known;
    const out = this.emit(
      this.nextName(hint ?? (typeof key === 'string' ? key : undefined)),
      'field',
      [h],
      typeof key === 'number' ? { index: key } : { name: key },
      f.type,
    );
    this.memo.set(memoKey, out);
    return out;
  }

  /** A field reached by a dotted path of names or indices, e.g. `model.w0` or `0.x`. */
  get(h: Handle, path: string): Handle {
    return path.split('.').reduce((cur, k) => this.field(cur, /^\d+$/.test(k) ? Number(k) : k), h);
  }

  /** Every field of a struct, in order. */
  unpack(h: Handle): Handle[] {
    const t = h.type;
    if (t.kind !== 'struct')
      throw new BuildError(`${this.label}: cannot unpack "${h.name}": ${formatType(t)} is not a struct`);
    return t.fields.map((f, i) => this.field(h, f.name ?? i));
  }

  /** Calls a named function on an argument (none for a `( -> T)` function). */
  call(fn: FnRef, arg?: Handle, hint?: string): Handle {
    const nodeName = this.nextName(hint);
    const where = `${this.label}: node "${nodeName}" (call ${fn.name})`;
    if (fn.parameter) {
      if (!arg)
        throw new BuildError(`${where}: the function takes ${formatType(fn.parameter)}, no argument given`);
      this.fits(where, fn.parameter, this.own(arg, 'call', 0), 'the argument');
    } else if (arg) throw new BuildError(`${where}: the function takes no parameter`);
    return this.emitCall(nodeName, 'call', fn, arg ? [arg] : [], {}, fn.result);
  }

  /**
   * Folds `fn: <acc, element> -> acc` over a sequence, `epochs` times; returns the final accumulator. With
   * `shuffleSeed`, every epoch after the first deals the examples into batches in a fresh seeded order.
   */
  fold(
    seq: Handle,
    init: Handle,
    fn: FnRef,
    options: { epochs?: number; shuffleSeed?: number } = {},
    hint?: string,
  ): Handle {
    const nodeName = this.nextName(hint);
    const where = `${this.label}: node "${nodeName}" (fold ${fn.name})`;
    this.own(seq, 'fold', 0);
    this.own(init, 'fold', 1);
    const [acc, elem] = this.pair(where, fn, 'accumulator, element');
    if (seq.type.kind !== 'sequence')
      throw new BuildError(`${where}: arg 0 "${seq.name}" must be a sequence, is ${formatType(seq.type)}`);
    this.fits(where, acc, init, 'the initial accumulator');
    this.fits(
      where,
      elem,
      { name: seq.name, type: seq.type.element, owner: this.label },
      'the sequence element',
    );
    const why = assignabilityError(acc, fn.result);
    if (why)
      throw new BuildError(`${where}: the function's result cannot be fed back as the accumulator: ${why}`);
    const epochs = options.epochs ?? 1;
    if (!Number.isInteger(epochs) || epochs < 1)
      throw new BuildError(`${where}: epochs must be an integer >= 1, got ${epochs}`);
    const seed = options.shuffleSeed;
    if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff))
      throw new BuildError(`${where}: shuffleSeed must be an integer in 0..2^32-1, got ${seed}`);
    const attrs = {
      ...(epochs === 1 ? {} : { epochs }),
      ...(seed !== undefined && epochs > 1 ? { shuffle_seed: seed } : {}),
    };
    return this.emitCall(nodeName, 'fold', fn, [seq, init], attrs, acc);
  }

  /** Applies `fn: state -> state` `count` times. */
  repeat(init: Handle, fn: FnRef, count: number, hint?: string): Handle {
    const nodeName = this.nextName(hint);
    const where = `${this.label}: node "${nodeName}" (repeat ${fn.name})`;
    if (!fn.parameter) throw new BuildError(`${where}: the function must take the loop state`);
    if (!Number.isInteger(count) || count < 0)
      throw new BuildError(`${where}: count must be an integer >= 0, got ${count}`);
    this.fits(where, fn.parameter, this.own(init, 'repeat', 0), 'the initial state');
    const why = assignabilityError(fn.parameter, fn.result);
    if (why) throw new BuildError(`${where}: the function's result cannot be fed back as the state: ${why}`);
    return this.emitCall(nodeName, 'repeat', fn, [init], { count }, fn.parameter);
  }

  /**
   * The value and gradient of `fn: <params, rest> -> float32[]` with respect to `params`; returns the struct
   * `<value, grad>` and its two fields.
   */
  valueAndGrad(
    fn: FnRef,
    params: Handle,
    rest: Handle,
    hint?: string,
  ): { result: Handle; value: Handle; grad: Handle } {
    const nodeName = this.nextName(hint);
    const where = `${this.label}: node "${nodeName}" (value_and_grad ${fn.name})`;
    const [p, r] = this.pair(where, fn, 'params, rest');
    this.fits(where, p, this.own(params, 'value_and_grad', 0), 'the params');
    this.fits(where, r, this.own(rest, 'value_and_grad', 1), 'the rest');
    const res = fn.result;
    if (res.kind !== 'tensor' || res.dtype !== 'float32' || res.shape.length !== 0) {
      throw new BuildError(
        `${where}: the function must return a float32 scalar to be differentiated, returns ${formatType(res)}`,
      );
    }
    let leaves;
    try {
      leaves = tensorLeaves(p);
    } catch {
      throw new BuildError(`${where}: params ${formatType(p)} must be tensors or structs of tensors`);
    }
    const bad = leaves.find((l) => l.type.dtype !== 'float32');
    if (bad)
      throw new BuildError(
        `${where}: params ${bad.path.join('.') || 'value'} is ${bad.type.dtype}; only float32 can be differentiated`,
      );
    const type = structType([
      ['value', tensorType('float32', [])],
      ['grad', p],
    ]);
    const result = this.emitCall(nodeName, 'value_and_grad', fn, [params, rest], {}, type);
    return { result, value: this.field(result, 'value'), grad: this.field(result, 'grad') };
  }

  /** The computation with `result` as its result; used by PlanBuilder once the body returns. */
  finish(result: Handle): Computation {
    this.own(result, 'result', 0);
    const comp: Computation = { nodes: [...this.nodes], result: result.name };
    return this.parameterHandle
      ? { parameter: { name: this.parameterName, type: this.parameterHandle.type }, ...comp }
      : comp;
  }

  /** Checks that a handle belongs to this computation. */
  protected own(h: Handle, op: string, i: number): Handle {
    if (h.owner !== this.label || !this.names.has(h.name)) {
      throw new BuildError(
        `${this.label}: ${op} arg ${i} "${h.name}" belongs to ${h.owner}, not to this computation (pass it through the parameter)`,
      );
    }
    return h;
  }

  private pair(where: string, fn: FnRef, what: string): [TffType, TffType] {
    const p = fn.parameter;
    if (!p || p.kind !== 'struct' || p.fields.length !== 2) {
      throw new BuildError(
        `${where}: the function must take a 2-field struct <${what}>, takes ${p ? formatType(p) : 'no parameter'}`,
      );
    }
    return [(p as StructType).fields[0]!.type, (p as StructType).fields[1]!.type];
  }

  private fits(where: string, slot: TffType, h: Handle, what: string): void {
    const why = assignabilityError(slot, h.type);
    if (why)
      throw new BuildError(
        `${where}: ${what} "${h.name}" ${formatType(h.type)} does not fit ${formatType(slot)}: ${why}`,
      );
  }

  private emitCall(
    nodeName: string,
    op: string,
    fn: FnRef,
    args: Handle[],
    attrs: Record<string, unknown>,
    type: TffType,
  ): Handle {
    this.called.add(fn);
    return this.emit(nodeName, op, args, { fn: fn.name, ...attrs }, type);
  }

  private emit(
    name: string,
    op: string,
    args: readonly Handle[],
    attrs: Record<string, unknown>,
    type: TffType,
  ): Handle {
    const node: Node = { name, op };
    if (args.length) node.args = args.map((a) => a.name);
    if (Object.keys(attrs).length) node.attrs = attrs;
    this.nodes.push(node);
    return { name, type, owner: this.label };
  }

  /** A fresh node name: `<hint>_<n>` or `t<n>`; reserved at once so that errors can name the node. */
  private nextName(hint?: string): string {
    const base = hint ? hint.replace(/[^A-Za-z0-9_]/g, '_').replace(/^(?=[0-9])/, '_') : undefined;
    let name: string;
    do {
      this.counter += 1;
      name = base ? `${base}_${this.counter}` : `t${this.counter}`;
    } while (this.names.has(name));
    if (!NODE_NAME.test(name) || name.length > 128)
      throw new BuildError(`${this.label}: bad node name hint "${hint}"`);
    this.names.add(name);
    return name;
  }
}

function stripUndefined(attrs: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(attrs).filter(([, v]) => v !== undefined));
}

/**
 * The dtype a number among an op's arguments takes: that of its numeric tensor arguments, not of a bool
 * condition (`where(cond, x, 0)` is `where(cond, x, 0.0)` for a float32 `x`); bool only when every tensor
 * argument is bool, except for `where`, whose values are numbers (float32 when no argument says).
 */
function literalDtype(op: string, args: readonly Operand[]): Dtype {
  const dtypes = args.flatMap((a) =>
    typeof a !== 'number' && a.type.kind === 'tensor' ? [a.type.dtype] : [],
  );
  const numeric = dtypes.find((d) => d !== 'bool');
  if (numeric) return numeric;
  if (op === 'where' || dtypes.length === 0) return 'float32';
  return dtypes[0]!;
}
