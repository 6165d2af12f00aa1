import * as tf from '@tensorflow/tfjs';
import type { Computation, Node } from '../generated/computation';
import { AppError } from '../errors';
import { DEFAULT_LIMITS, type Limits } from './limits';
import { getOp, IntOverflowError, OpLimitError } from './ops';
import type { TffType } from './types';
import { formatType } from './types';
import { epochPermutation } from './shuffle';
import {
  isSequence,
  isStruct,
  isTensor,
  sequenceValue,
  tensorsOf,
  type StructValue,
  type StructValueField,
  type Value,
} from './value';

/** Options of one evaluation. */
export interface RunOptions {
  /** The round being evaluated (0 for initialize); seeds deterministic random ops. */
  readonly round: number;
  /** Names the computation in errors, e.g. `work`. */
  readonly label?: string;
}

/** Mutable bookkeeping of one evaluation, shared by every nested call. */
interface Budget {
  ops: number;
  readonly round: number;
}

/** A failure at run time, located at a node; becomes an AppError at the top of the evaluation. */
class EvalFailure extends Error {
  constructor(
    readonly code: 'EVAL_LIMIT_EXCEEDED' | 'EVAL_ERROR' | 'EVAL_INT_OVERFLOW',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Runs IR computations on TensorFlow.js. The same interpreter runs on the server, on aggregation workers
 * and in clients (browsers included), so it uses no Node-only API. Every evaluation runs inside `tf.tidy`
 * and each fold or repeat step inside its own, so memory stays bounded by one step's tensors; the caller
 * owns (and disposes) the tensors of the result and only those. Plans are assumed to have passed
 * `checkPlan`; run-time checks cover what static types cannot: dynamic sizes, loop lengths, op budget.
 */
export class Interpreter {
  /** The plan's functions by name: a Map, so that a name like "toString" never reaches Object.prototype. */
  private readonly functions: ReadonlyMap<string, Computation>;

  constructor(
    functions: Readonly<Record<string, Computation>> = {},
    private readonly limits: Limits = DEFAULT_LIMITS,
  ) {
    this.functions = new Map(Object.entries(functions));
  }

  /** Evaluates `comp` on `arg` (omit for computations without a parameter). */
  run(comp: Computation, arg: Value | undefined, options: RunOptions): Value {
    const label = options.label ?? 'computation';
    const budget: Budget = { ops: 0, round: options.round };
    const inputs = new Set(arg ? tensorsOf(arg) : []);
    try {
      return tf.tidy(() => {
        const result = this.evaluate(comp, arg, budget, label, 0);
        // The caller owns the result; a tensor passed straight through from the input is cloned so that
        // disposing the result never disposes the caller's input.
        return mapTensors(result, (t) => (inputs.has(t) ? tf.clone(t) : t)) as unknown as tf.TensorContainer;
      }) as unknown as Value;
    } catch (e) {
      // Failures inside called functions name the function; prefix the computation the caller ran.
      // The original error goes along as `cause`: an isolate tells a broken backend by it, not by the text.
      if (e instanceof EvalFailure) {
        const message = e.message.startsWith(`${label}:`) ? e.message : `${label}: ${e.message}`;
        throw new AppError(e.code, message, [], { cause: e.cause });
      }
      if (e instanceof AppError) throw e;
      throw new AppError('EVAL_ERROR', `${label}: ${e instanceof Error ? e.message : String(e)}`, [], {
        cause: e,
      });
    }
  }

  private evaluate(
    comp: Computation,
    arg: Value | undefined,
    budget: Budget,
    label: string,
    depth: number,
  ): Value {
    if (depth > this.limits.maxCallDepth) {
      throw new EvalFailure(
        'EVAL_LIMIT_EXCEEDED',
        `${label}: calls nest deeper than ${this.limits.maxCallDepth}`,
      );
    }
    const env = new Map<string, Value>();
    if (comp.parameter) {
      if (arg === undefined) throw new EvalFailure('EVAL_ERROR', `${label}: missing its parameter`);
      env.set(comp.parameter.name, conform(arg, comp.parameter.type, `${label}: parameter`));
    }
    for (const node of comp.nodes) {
      budget.ops += 1;
      if (budget.ops > this.limits.maxOpsExecuted) {
        throw new EvalFailure(
          'EVAL_LIMIT_EXCEEDED',
          `${label}: more than ${this.limits.maxOpsExecuted} ops executed`,
        );
      }
      const args = (node.args ?? []).map((a) => {
        const v = env.get(a);
        if (v === undefined)
          throw new EvalFailure('EVAL_ERROR', `${label}: node "${node.name}": "${a}" is not defined`);
        return v;
      });
      let value: Value;
      try {
        value = this.evalNode(node, args, budget, label, depth);
      } catch (e) {
        if (e instanceof EvalFailure || e instanceof AppError) throw e;
        const why = e instanceof Error ? e.message : String(e);
        const code =
          e instanceof OpLimitError
            ? 'EVAL_LIMIT_EXCEEDED'
            : e instanceof IntOverflowError
              ? 'EVAL_INT_OVERFLOW'
              : 'EVAL_ERROR';
        throw new EvalFailure(code, `${label}: node "${node.name}" (${node.op}): ${why}`, { cause: e });
      }
      env.set(node.name, value);
    }
    const result = env.get(comp.result);
    if (result === undefined)
      throw new EvalFailure('EVAL_ERROR', `${label}: result "${comp.result}" is not defined`);
    return result;
  }

  private evalNode(node: Node, args: readonly Value[], budget: Budget, label: string, depth: number): Value {
    const attrs = (node.attrs ?? {}) as Record<string, unknown>;
    const where = `${label}: node "${node.name}" (${node.op})`;
    switch (node.op) {
      case 'struct': {
        const names = attrs.names as (string | null)[] | undefined;
        return { kind: 'struct', fields: args.map((value, i) => field(names?.[i] ?? undefined, value)) };
      }
      case 'field': {
        const s = args[0]!;
        if (!isStruct(s)) throw new EvalFailure('EVAL_ERROR', `${where}: arg 0 is not a struct`);
        const f =
          attrs.name !== undefined
            ? s.fields.find((x) => x.name === attrs.name)
            : s.fields[attrs.index as number];
        if (!f) throw new EvalFailure('EVAL_ERROR', `${where}: no such field`);
        return f.value;
      }
      case 'call':
        return this.evaluate(
          this.fn(attrs.fn, where),
          args[0],
          budget,
          `function ${String(attrs.fn)}`,
          depth + 1,
        );
      case 'fold':
        return this.fold(args, attrs, budget, where, depth);
      case 'repeat': {
        const fn = this.fn(attrs.fn, where);
        let state = args[0]!;
        for (let i = 0; i < (attrs.count as number); i++) {
          const prev = state;
          state = this.step(
            prev,
            prev,
            () => this.evaluate(fn, prev, budget, `function ${String(attrs.fn)}`, depth + 1),
            i > 0,
          );
        }
        return state;
      }
      case 'value_and_grad':
        return this.valueAndGrad(attrs, args, budget, where, depth);
    }
    const op = getOp(node.op);
    if (!op) throw new EvalFailure('EVAL_ERROR', `${where}: unknown op`);
    const tensors = args.map((a, i) => {
      if (!isTensor(a)) throw new EvalFailure('EVAL_ERROR', `${where}: arg ${i} is not a tensor`);
      return a;
    });
    const out = op.run(tensors, attrs, {
      round: budget.round,
      node: `${label}/${node.name}`,
      maxTensorElements: this.limits.maxTensorElements,
    });
    if (out.size > this.limits.maxTensorElements) {
      throw new EvalFailure(
        'EVAL_LIMIT_EXCEEDED',
        `${where}: result has ${out.size} elements, more than the limit of ${this.limits.maxTensorElements}`,
      );
    }
    return out;
  }

  private fold(
    args: readonly Value[],
    attrs: Record<string, unknown>,
    budget: Budget,
    where: string,
    depth: number,
  ): Value {
    const fn = this.fn(attrs.fn, where);
    const seq = args[0]!;
    if (!isSequence(seq)) throw new EvalFailure('EVAL_ERROR', `${where}: arg 0 is not a sequence`);
    const epochs = (attrs.epochs as number | undefined) ?? 1;
    const steps = seq.elements.length * epochs;
    if (steps > this.limits.maxFoldSteps) {
      throw new EvalFailure(
        'EVAL_LIMIT_EXCEEDED',
        `${where}: ${seq.elements.length} elements x ${epochs} epochs is more than the limit of ${this.limits.maxFoldSteps} steps`,
      );
    }
    const accName = fn.parameter?.type.kind === 'struct' ? fn.parameter.type.fields[0]?.name : undefined;
    const elemName = fn.parameter?.type.kind === 'struct' ? fn.parameter.type.fields[1]?.name : undefined;
    const shuffleSeed = attrs.shuffle_seed as number | undefined;
    let acc = args[1]!;
    let owned = false;
    for (let e = 0; e < epochs; e++) {
      // Epoch 0 takes the batches as given; with a shuffle seed each later epoch deals the same examples
      // into batches of the same sizes in a fresh order (src/compute/shuffle.ts).
      const elements =
        e > 0 && shuffleSeed !== undefined ? reshuffled(seq.elements, shuffleSeed, e, where) : seq.elements;
      try {
        for (const element of elements) {
          const input: StructValue = {
            kind: 'struct',
            fields: [field(accName, acc), field(elemName, element)],
          };
          acc = this.step(
            acc,
            input,
            () => this.evaluate(fn, input, budget, `function ${String(attrs.fn)}`, depth + 1),
            owned,
          );
          owned = true;
        }
      } finally {
        // A step clones whatever of its input it keeps, so the reshuffled batches are this loop's alone.
        if (elements !== seq.elements) for (const el of elements) for (const t of tensorsOf(el)) t.dispose();
      }
    }
    return acc;
  }

  /**
   * Runs one loop step in its own tidy scope so that only the new state survives it. A function sees only
   * its parameter, so the only older tensors its result can hold are the step's inputs; those are cloned,
   * so that releasing the previous state (when this loop created it, never the caller's initial value)
   * cannot free anything the new state or the caller still uses.
   */
  private step(prev: Value, input: Value, body: () => Value, ownsPrev: boolean): Value {
    const inputs = new Set(tensorsOf(input));
    const next = tf.tidy(
      () => mapTensors(body(), (t) => (inputs.has(t) ? tf.clone(t) : t)) as unknown as tf.TensorContainer,
    ) as unknown as Value;
    if (ownsPrev) for (const t of tensorsOf(prev)) t.dispose();
    return next;
  }

  private valueAndGrad(
    attrs: Record<string, unknown>,
    args: readonly Value[],
    budget: Budget,
    where: string,
    depth: number,
  ): Value {
    const fn = this.fn(attrs.fn, where);
    const [params, rest] = [args[0]!, args[1]!];
    const leaves = tensorsOf(params);
    const pType = fn.parameter?.type.kind === 'struct' ? fn.parameter.type : undefined;
    const label = `function ${String(attrs.fn)}`;
    const f = (...xs: tf.Tensor[]): tf.Scalar => {
      let i = 0;
      const rebuilt = mapTensors(params, () => xs[i++]!);
      const input: StructValue = {
        kind: 'struct',
        fields: [field(pType?.fields[0]?.name, rebuilt), field(pType?.fields[1]?.name, rest)],
      };
      const out = this.evaluate(fn, input, budget, label, depth + 1);
      if (!isTensor(out) || out.rank !== 0)
        throw new EvalFailure('EVAL_ERROR', `${where}: ${label} did not return a scalar`);
      return out as tf.Scalar;
    };
    const { value, grads } = tf.valueAndGrads(f)(leaves);
    let i = 0;
    const grad = mapTensors(params, () => grads[i++]!);
    return { kind: 'struct', fields: [field('value', value), field('grad', grad)] };
  }

  private fn(name: unknown, where: string): Computation {
    const fn = typeof name === 'string' ? this.functions.get(name) : undefined;
    if (!fn) throw new EvalFailure('EVAL_ERROR', `${where}: unknown function "${String(name)}"`);
    return fn;
  }
}

function field(name: string | null | undefined, value: Value): StructValueField {
  return name ? { name, value } : { value };
}

/** Rebuilds a value with each tensor replaced by `f(tensor)`, keeping the structure. */
export function mapTensors(v: Value, f: (t: tf.Tensor) => tf.Tensor): Value {
  if (isStruct(v))
    return { kind: 'struct', fields: v.fields.map((x) => field(x.name, mapTensors(x.value, f))) };
  if (isSequence(v)) return sequenceValue(v.elements.map((e) => mapTensors(e, f)));
  return f(v);
}

/**
 * The batches `elements` with their examples (the first dimension of every tensor of a batch) permuted by
 * `epochPermutation(total, seed, epoch)` and dealt into batches of the same sizes, in order.
 */
function reshuffled(elements: readonly Value[], seed: number, epoch: number, where: string): Value[] {
  if (elements.length === 0) return [];
  const leaves = elements.map((el) => tensorsOf(el));
  const sizes = leaves.map((ts, i) => {
    const n = ts[0]?.shape[0];
    if (n === undefined || ts.some((t) => t.shape[0] !== n)) {
      throw new EvalFailure(
        'EVAL_ERROR',
        `${where}: shuffle_seed needs batches whose tensors all have the batch as their first dimension (element ${i})`,
      );
    }
    return n;
  });
  const total = sizes.reduce((a, b) => a + b, 0);
  const order = tf.tensor1d(epochPermutation(total, seed, epoch), 'int32');
  // One leaf at a time, each in its own scope: besides the new batches, at most two copies of one leaf
  // (joined, then permuted) are alive at once (the cost model counts this, cost.ts).
  const parts = leaves[0]!.map((_, k) =>
    tf.tidy(() =>
      tf.split(
        tf.gather(
          tf.concat(
            leaves.map((ts) => ts[k]!),
            0,
          ),
          order,
        ),
        sizes,
        0,
      ),
    ),
  );
  order.dispose();
  return elements.map((el, i) => {
    let k = 0;
    return mapTensors(el, () => parts[k++]![i]!);
  });
}

/**
 * Checks a value against a declared type at a computation boundary and gives its struct fields the
 * declared names, so that values built by callers (runners, SDKs) can be unnamed. Dimensions declared
 * `null` accept any size.
 */
export function conform(v: Value, t: TffType, where: string): Value {
  switch (t.kind) {
    case 'tensor': {
      if (!isTensor(v)) throw new EvalFailure('EVAL_ERROR', `${where}: expected a tensor ${formatType(t)}`);
      const ok =
        v.dtype === t.dtype &&
        v.rank === t.shape.length &&
        t.shape.every((d, i) => d === null || d === v.shape[i]);
      if (!ok) {
        throw new EvalFailure(
          'EVAL_ERROR',
          `${where}: expected ${formatType(t)}, got ${v.dtype}[${v.shape.join(',')}]`,
        );
      }
      return v;
    }
    case 'struct': {
      if (!isStruct(v) || v.fields.length !== t.fields.length) {
        throw new EvalFailure('EVAL_ERROR', `${where}: expected a struct ${formatType(t)}`);
      }
      return {
        kind: 'struct',
        fields: t.fields.map((f, i) =>
          field(f.name, conform(v.fields[i]!.value, f.type, `${where}.${f.name ?? i}`)),
        ),
      };
    }
    case 'sequence': {
      if (!isSequence(v))
        throw new EvalFailure('EVAL_ERROR', `${where}: expected a sequence ${formatType(t)}`);
      return sequenceValue(v.elements.map((e, i) => conform(e, t.element, `${where}[${i}]`)));
    }
  }
}
