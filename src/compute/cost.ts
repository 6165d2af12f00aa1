import type { Computation, Node } from '../generated/computation';
import { bytesOf, conformType, fillUnknown, typeKey, widenState } from './cost-types';
import { getOp } from './ops';
import { opCost, type Dims } from './ops/costs';
import { OpError } from './ops/op';
import {
  formatType,
  structType,
  tensorLeaves,
  tensorType,
  typesEqual,
  type TensorType,
  type TffType,
} from './types';

/**
 * The static cost model: an estimate of one evaluation's peak memory and FLOPs from static shapes, modelled
 * on the interpreter (interpreter.ts) as it runs:
 *
 * - every tensor created in an evaluation stays alive until the evaluation's `tf.tidy` ends, so a body's
 *   memory is the sum of its node results (and of the intermediates their kernels keep);
 * - `call` runs the callee in the caller's scope: all of the callee's tensors stay alive too;
 * - each `fold` and `repeat` step runs in its own scope that keeps only the new state, so a loop multiplies
 *   FLOPs by its count (epochs x batches, or count) but adds only the previous state and one step's peak
 *   to memory;
 * - `value_and_grad` costs `GRADIENT_FLOPS` forward passes of FLOPs and `GRADIENT_MEMORY` forward peaks
 *   of memory (the tape keeps the forward pass's tensors while gradients are computed).
 *
 * The parameter's own tensors are not counted: the caller made them. Assumptions for what is unknown before
 * run time (docs/ir.md, "Cost model"): an unknown dimension has `batchSize` elements, a sequence (client
 * data) has `sequenceLength` elements. A callee is costed with its caller's shapes, since a function that
 * declares `float32[?]` costs what the tensor it is given costs; so is a top-level computation, given the
 * type its caller passes (the plan's form types, src/plan/cost-check.ts).
 */

/** FLOPs of a gradient as a multiple of the forward pass (forward, then about twice that backwards). */
export const GRADIENT_FLOPS = 3;
/**
 * Peak memory of a gradient as a multiple of the forward pass's peak: the tape keeps the forward tensors while
 * the backward pass makes about three times as many (measured with `tf.profile`, cost-profile.test.ts).
 */
export const GRADIENT_MEMORY = 4;

/** What the model assumes and how much work it may do. */
export interface CostOptions {
  /** Named computations reached by call, fold, repeat and value_and_grad. */
  readonly functions: Readonly<Record<string, Computation>>;
  /** Elements of an unknown dimension (the plan's `client_data.batch_size`). */
  readonly batchSize: number;
  /** Elements of a sequence (batches of client data), unknown until run time. */
  readonly sequenceLength: number;
  /** The run-time per-tensor limit, which bounds a loop state whose shape changes every step. */
  readonly maxTensorElements: number;
  /** Node visits the estimate may make (functions are costed once per distinct parameter type). */
  readonly maxVisits: number;
}

/** The cost of one top-level node of a computation. */
export interface NodeCost {
  readonly index: number;
  readonly name: string;
  readonly op: string;
  /** FLOPs of the node, loops and calls included. */
  readonly flops: number;
  /** Bytes the node keeps alive until its scope ends (its result, or a callee's every tensor). */
  readonly retainedBytes: number;
  /** Bytes alive while the node runs, beyond what earlier nodes keep (a loop's step, a callee's peak). */
  readonly peakBytes: number;
  /** For call, loop and gradient nodes: how often which function runs, e.g. `40 x function mm`. */
  readonly via?: string;
}

/** The estimated cost of one evaluation of a computation. */
export interface Cost {
  readonly peakBytes: number;
  readonly flops: number;
  /** Bytes alive when the evaluation ends (before its scope releases them). */
  readonly retainedBytes: number;
  /** The result type with the shapes the model derived. */
  readonly result: TffType;
  readonly nodes: readonly NodeCost[];
  /** The index of the node while which memory peaks (-1 for no nodes). */
  readonly peakAt: number;
}

/** The estimate would need more work than `maxVisits` allows. */
export class CostBudgetError extends Error {}

/**
 * A node's type inference fails at the shapes the model gives it (a callee's node included), so no estimate
 * holds: the computation fails there at run time, or the model cannot size it. `index`, `name` and `op` are
 * those of the top-level node of the computation being estimated; `reason` says where inside it.
 */
export class CostShapeError extends Error {
  constructor(
    readonly index: number,
    readonly node: string,
    readonly op: string,
    readonly reason: string,
  ) {
    super(`node "${node}" (${op}) fails at the shapes it is given: ${reason}`);
    this.name = 'CostShapeError';
  }
}

/** A node's cost and result type, before the walk places it. */
type NodeResult = Omit<NodeCost, 'index' | 'name' | 'op'> & { type: TffType };

/** Estimates costs for one plan; memoises each function per parameter type. */
export class CostModel {
  private readonly memo = new Map<string, Cost>();
  private readonly constants = new WeakMap<Node, TensorType>();
  private visits = 0;

  constructor(private readonly options: CostOptions) {}

  /**
   * The cost of one evaluation of `comp` given a parameter of type `actual` (default: the declared type):
   * the declared type where it knows a dimension, the actual one where it leaves it unknown. Dimensions
   * unknown in both take `batchSize` elements before shapes are inferred, so that shapes derived from them (a
   * reshape to `[-1]`) are sized too. That alone is an assumption: should inference then fail (a slice that a
   * batch of that size is too short for), those dimensions are left unknown instead, which is what the type
   * checker inferred with. Any other inference failure throws CostShapeError: the shapes are the real ones,
   * so a cheaper re-costing would not be an estimate of what runs. Throws CostBudgetError.
   */
  estimate(comp: Computation, actual?: TffType): Cost {
    const declared = comp.parameter?.type;
    const known = declared && actual ? conformType(declared, actual) : declared;
    const filled = known && fillUnknown(known, this.options.batchSize);
    try {
      return this.walk(comp, filled);
    } catch (e) {
      if (!(e instanceof CostShapeError) || !known || typeKey(filled) === typeKey(known)) throw e;
      return this.walk(comp, known);
    }
  }

  private fn(name: unknown): Computation {
    const fns = this.options.functions;
    if (typeof name !== 'string' || !Object.prototype.hasOwnProperty.call(fns, name))
      throw new Error(`unknown function "${String(name)}"`);
    return fns[name]!;
  }

  /** The cost of function `name` given a parameter of type `actual`, memoised. */
  private callee(name: string, actual: TffType | undefined): Cost {
    const comp = this.fn(name);
    const param = comp.parameter && actual ? conformType(comp.parameter.type, actual) : undefined;
    const key = `${name}\n${typeKey(param)}`;
    let cost = this.memo.get(key);
    if (!cost) {
      // No fallback here: `param` holds the caller's shapes, real or assumed by the top-level estimate.
      cost = this.walk(comp, param);
      this.memo.set(key, cost);
    }
    return cost;
  }

  private walk(comp: Computation, parameter: TffType | undefined): Cost {
    const env = new Map<string, TffType>();
    if (comp.parameter && parameter) env.set(comp.parameter.name, parameter);
    const nodes: NodeCost[] = [];
    let live = 0;
    let peak = 0;
    let peakAt = -1;
    let flops = 0;
    comp.nodes.forEach((node, index) => {
      this.visits += 1;
      if (this.visits > this.options.maxVisits)
        throw new CostBudgetError(
          `estimating the cost takes more than ${this.options.maxVisits} node visits`,
        );
      const args = (node.args ?? []).map((a) => {
        const t = env.get(a);
        if (!t) throw new Error(`"${a}" is not defined`);
        return t;
      });
      const { type, ...cost } = this.located(node, index, args);
      env.set(node.name, type);
      nodes.push({ index, name: node.name, op: node.op, ...cost });
      if (live + cost.peakBytes > peak || peakAt < 0) {
        peak = Math.max(peak, live + cost.peakBytes);
        peakAt = index;
      }
      live += cost.retainedBytes;
      flops += cost.flops;
    });
    const result = env.get(comp.result);
    if (!result) throw new Error(`result "${comp.result}" is not defined`);
    return { peakBytes: peak, flops, retainedBytes: live, result, nodes, peakAt };
  }

  /** `node` costed, its inference failures (its callees' included) located as a CostShapeError. */
  private located(node: Node, index: number, args: readonly TffType[]): NodeResult {
    try {
      return this.node(node, args);
    } catch (e) {
      if (e instanceof OpError) {
        const given = args.map(formatType).join(', ');
        throw new CostShapeError(index, node.name, node.op, `given ${given || 'no args'}: ${e.message}`);
      }
      if (e instanceof CostShapeError) {
        const fn = String((node.attrs as { fn?: unknown } | undefined)?.fn);
        const inner = `function ${fn}: node "${e.node}" (${e.op}) ${e.reason}`;
        throw new CostShapeError(index, node.name, node.op, inner);
      }
      throw e;
    }
  }

  private node(node: Node, args: readonly TffType[]): NodeResult {
    const attrs = (node.attrs ?? {}) as Record<string, unknown>;
    const { batchSize, sequenceLength, maxTensorElements } = this.options;
    const bytes = (t: TffType) => bytesOf(t, batchSize);
    const declaredParam = (name: unknown) => this.fn(name).parameter?.type;
    const fnName = String(attrs.fn);
    switch (node.op) {
      case 'struct': {
        // References only; the checker has already typed the node, so names are valid and unique.
        const names = attrs.names as (string | null)[] | undefined;
        const type = structType(args.map((t, i) => [names?.[i] ?? undefined, t]));
        return { type, flops: 0, retainedBytes: 0, peakBytes: 0 };
      }
      case 'field': {
        const s = args[0]!;
        const f =
          s.kind !== 'struct'
            ? undefined
            : attrs.name !== undefined
              ? s.fields.find((x) => x.name === attrs.name)
              : s.fields[attrs.index as number];
        if (!f) throw new Error(`node "${node.name}": no such field`);
        return { type: f.type, flops: 0, retainedBytes: 0, peakBytes: 0 };
      }
      case 'call': {
        const c = this.callee(fnName, args[0]);
        return {
          type: c.result,
          flops: c.flops,
          retainedBytes: c.retainedBytes,
          peakBytes: c.peakBytes,
          via: `function ${fnName}`,
        };
      }
      case 'fold':
      case 'repeat': {
        const fold = node.op === 'fold';
        const p = declaredParam(attrs.fn);
        const count = fold
          ? ((attrs.epochs as number | undefined) ?? 1) * sequenceLength
          : (attrs.count as number);
        const seq = args[0]!;
        const element = seq.kind === 'sequence' ? seq.element : seq;
        const declaredState = fold ? (p?.kind === 'struct' ? p.fields[0]?.type : undefined) : p;
        const given = args[fold ? 1 : 0]!;
        // A fold's body takes <state, element>, a repeat's the state; the callee gives fields their names.
        const input = (s: TffType): TffType =>
          fold
            ? structType([
                [undefined, s],
                [undefined, element],
              ])
            : s;
        let state = declaredState ? conformType(declaredState, given) : given;
        let body = this.callee(fnName, input(state));
        if (!typesEqual(state, body.result)) {
          // The body changes the state's shapes, so the state may grow every step.
          state = widenState(state, body.result, maxTensorElements);
          body = this.callee(fnName, input(state));
        }
        if (count === 0) return { type: state, flops: 0, retainedBytes: 0, peakBytes: 0 };
        // With shuffle_seed, every epoch after the first runs on a reshuffled copy of the data, made one leaf
        // at a time with two copies of that leaf alive besides the new batches (interpreter.ts, reshuffled).
        const epochs = (attrs.epochs as number | undefined) ?? 1;
        const shuffled = fold && attrs.shuffle_seed !== undefined && epochs > 1;
        const copy = shuffled ? sequenceLength * bytes(element) : 0;
        const leafMax = shuffled
          ? Math.max(0, ...tensorLeaves(element).map((l) => sequenceLength * bytes(l.type)))
          : 0;
        // From the second step on, the previous state (made by the loop) lives beside the step's tensors.
        return {
          type: state,
          flops: count * body.flops,
          retainedBytes: bytes(state),
          peakBytes: (count > 1 ? bytes(state) : 0) + Math.max(body.peakBytes + copy, copy + 2 * leafMax),
          via: `${count} x function ${fnName}`,
        };
      }
      case 'value_and_grad': {
        const c = this.callee(
          fnName,
          structType([
            [undefined, args[0]!],
            [undefined, args[1]!],
          ]),
        );
        const p = declaredParam(attrs.fn);
        const params = p?.kind === 'struct' ? conformType(p.fields[0]!.type, args[0]!) : args[0]!;
        const type = structType([
          ['value', tensorType('float32', [])],
          ['grad', params],
        ]);
        return {
          type,
          flops: GRADIENT_FLOPS * c.flops,
          retainedBytes: bytes(type),
          peakBytes: GRADIENT_MEMORY * c.peakBytes + bytes(type),
          via: `gradient of function ${fnName}`,
        };
      }
    }
    const op = getOp(node.op);
    if (!op) throw new Error(`unknown op "${node.op}"`);
    const tensors = args as TensorType[];
    // An op without args has one type wherever its function is costed; a const's inference reads its whole
    // value, which must not be paid again for every shape a function is called with.
    let type = tensors.length === 0 ? this.constants.get(node) : undefined;
    if (!type) {
      type = op.infer(tensors, attrs);
      if (tensors.length === 0) this.constants.set(node, type);
    }
    const dims = (t: TensorType): Dims => t.shape.map((d) => d ?? batchSize);
    const cost = opCost(node.op);
    const inDims = tensors.map(dims);
    const outDims = dims(type);
    const retained =
      (cost.view ? 0 : bytes(type)) + (cost.scratchBytes ? cost.scratchBytes(inDims, outDims, attrs) : 0);
    return {
      type,
      flops: Math.max(1, cost.flops(inDims, outDims, attrs)),
      retainedBytes: retained,
      peakBytes: retained,
    };
  }
}
