import type { Computation, Node } from '../generated/computation';
import type { ErrorDetail } from '../errors';
import { compileSchema, schemaErrorDetails, type SchemaValidator } from '../schema-validation';
import { calledFunction } from './called-function';
import type { Limits } from './limits';
import { getOp } from './ops';
import { OpError } from './ops/op';
import { inferStructural, structuralAttrs } from './structural';
import {
  formatType,
  numElements,
  typeProblem,
  type StructType,
  type Signature,
  type TensorType,
  type TffType,
} from './types';

export { calledFunction };

const attrValidators = new Map<string, SchemaValidator>();
function attrValidator(op: string, schema: object): SchemaValidator {
  let v = attrValidators.get(op);
  if (!v) {
    v = compileSchema(schema);
    attrValidators.set(op, v);
  }
  return v;
}

/** A problem found while checking one computation; carries the JSON pointer of the offending part. */
export class CheckError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Static checker of the IR: types every node of every computation, enforces the static limits, forbids
 * recursion and keeps server-only ops out of computations that clients and workers run. One instance
 * checks one plan; signatures of named functions are computed once and reused.
 */
export class Checker {
  private readonly signatures = new Map<string, Signature>();
  private readonly depths = new Map<string, number>();
  private readonly inProgress = new Set<string>();
  private readonly serverOnlyUse = new Map<string, string | null>();
  /** The plan's functions by name: a Map, so that a name like "toString" never reaches Object.prototype. */
  private readonly functions: ReadonlyMap<string, Computation>;
  private totalNodes = 0;

  constructor(
    functions: Readonly<Record<string, Computation>>,
    private readonly limits: Limits,
  ) {
    this.functions = new Map(Object.entries(functions));
  }

  /**
   * Types a computation. `label` names it in messages (`work`, `function loss`); `pointer` is its JSON
   * pointer in the plan. Throws on the first problem inside it; `toDetail` locates what was thrown.
   */
  check(comp: Computation, label: string, pointer: string): Signature {
    return this.checkComputation(comp, label, pointer).signature;
  }

  /** The signature of a named function, checking it on first use. */
  signatureOf(name: string): Signature {
    return this.functionSignature(name, `/functions/${name}`);
  }

  /**
   * Where a computation (or a function it reaches) uses a server-only op, as `node x (random_normal) in
   * function f`, or null. Computations that run on clients or aggregation workers must not.
   */
  serverOnlyUseIn(comp: Computation, label: string): string | null {
    for (const node of comp.nodes) {
      if (getOp(node.op)?.serverOnly) return `node "${node.name}" (${node.op}) in ${label}`;
      const fn = calledFunction(node);
      const callee = fn === undefined ? undefined : this.functions.get(fn);
      if (fn !== undefined && callee) {
        if (!this.serverOnlyUse.has(fn)) {
          this.serverOnlyUse.set(fn, null); // acyclic by the time this runs; guards against loops anyway
          this.serverOnlyUse.set(fn, this.serverOnlyUseIn(callee, `function ${fn}`));
        }
        const use = this.serverOnlyUse.get(fn);
        if (use) return use;
      }
    }
    return null;
  }

  /** Nodes seen so far across every computation checked by this instance. */
  get nodeCount(): number {
    return this.totalNodes;
  }

  private functionSignature(name: string, pointer: string): Signature {
    const known = this.signatures.get(name);
    if (known) return known;
    const comp = this.functions.get(name);
    if (!comp) throw new CheckError(pointer, `unknown function "${name}"`);
    if (this.inProgress.has(name)) {
      throw new CheckError(pointer, `function "${name}" calls itself (recursion is not allowed)`);
    }
    this.inProgress.add(name);
    try {
      const { signature, depth } = this.checkComputation(comp, `function ${name}`, `/functions/${name}`);
      this.signatures.set(name, signature);
      this.depths.set(name, depth);
      return signature;
    } finally {
      this.inProgress.delete(name);
    }
  }

  private checkComputation(
    comp: Computation,
    label: string,
    pointer: string,
  ): { signature: Signature; depth: number } {
    if (comp.nodes.length > this.limits.maxNodesPerComputation) {
      throw new CheckError(
        `${pointer}/nodes`,
        `${label} has ${comp.nodes.length} nodes, more than the limit of ${this.limits.maxNodesPerComputation}`,
      );
    }
    this.totalNodes += comp.nodes.length;
    if (this.totalNodes > this.limits.maxNodesPerPlan) {
      throw new CheckError(pointer, `the plan has more than ${this.limits.maxNodesPerPlan} nodes`);
    }
    const env = new Map<string, TffType>();
    if (comp.parameter) {
      this.checkTypeSize(comp.parameter.type, `${pointer}/parameter/type`, `${label}: parameter`, true);
      env.set(comp.parameter.name, comp.parameter.type);
    }
    let depth = 0;
    comp.nodes.forEach((node, i) => {
      const at = `${pointer}/nodes/${i}`;
      const where = `${label}: node "${node.name}" (${node.op})`;
      if (env.has(node.name)) throw new CheckError(`${at}/name`, `${where}: the name is already defined`);
      const args = (node.args ?? []).map((a, j) => {
        const t = env.get(a);
        if (!t)
          throw new CheckError(
            `${at}/args/${j}`,
            `${where}: arg ${j} "${a}" is not defined before this node`,
          );
        return t;
      });
      try {
        const { type, calleeDepth } = this.inferNode(node, args, at, where);
        depth = Math.max(depth, calleeDepth);
        this.checkTypeSize(type, at, where);
        env.set(node.name, type);
      } catch (e) {
        if (e instanceof CheckError) throw e;
        if (e instanceof OpError) throw new CheckError(at, `${where}: ${e.message}`);
        throw e;
      }
    });
    const result = env.get(comp.result);
    if (!result)
      throw new CheckError(`${pointer}/result`, `${label}: result "${comp.result}" is not defined`);
    if (depth > this.limits.maxCallDepth) {
      throw new CheckError(
        pointer,
        `${label} nests calls ${depth} deep, more than the limit of ${this.limits.maxCallDepth}`,
      );
    }
    return { signature: comp.parameter ? { parameter: comp.parameter.type, result } : { result }, depth };
  }

  private inferNode(
    node: Node,
    args: readonly TffType[],
    at: string,
    where: string,
  ): { type: TffType; calleeDepth: number } {
    const attrs = (node.attrs ?? {}) as Record<string, unknown>;
    const structural = structuralAttrs(node.op);
    const op = structural ? undefined : getOp(node.op);
    if (!structural && !op) throw new OpError(`unknown op "${node.op}"`);
    const validate = attrValidator(node.op, structural ?? op!.attrs);
    if (!validate(attrs)) {
      const d = schemaErrorDetails(validate.errors, `${at}/attrs`)[0] ?? {
        path: `${at}/attrs`,
        message: 'invalid',
      };
      throw new CheckError(d.path, `${where}: attrs${d.path.slice(at.length + 6)} ${d.message}`);
    }
    if (op) {
      const arity = typeof op.arity === 'number' ? { min: op.arity, max: op.arity } : op.arity;
      if (args.length < arity.min || (arity.max !== undefined && args.length > arity.max)) {
        const want = arity.min === arity.max ? `${arity.min}` : `${arity.min}..${arity.max ?? 'n'}`;
        throw new OpError(`takes ${want} args, got ${args.length}`);
      }
      const tensors = args.map((t, i) => {
        if (t.kind !== 'tensor') throw new OpError(`arg ${i}: expected a tensor, got ${formatType(t)}`);
        return t;
      });
      return { type: op.infer(tensors, attrs), calleeDepth: 0 };
    }
    return inferStructural(node, args, attrs, {
      callee: (name) => this.callee(name, at, where),
      checkLoopCount: (n, attr) => this.checkLoopCount(n, attr),
    });
  }

  /** The signature of a function a structural node at `at` names in attr `fn`, and the depth calling it reaches. */
  private callee(name: string, at: string, where: string): { sig: Signature; depth: number } {
    if (!this.functions.has(name))
      throw new CheckError(`${at}/attrs/fn`, `${where}: unknown function "${name}"`);
    const sig = this.functionSignature(name, `${at}/attrs/fn`);
    return { sig, depth: (this.depths.get(name) ?? 0) + 1 };
  }

  private checkLoopCount(n: number, attr: string): void {
    if (n > this.limits.maxLoopCount) {
      throw new OpError(`attr ${attr}: ${n} is more than the limit of ${this.limits.maxLoopCount}`);
    }
  }

  /** Bounds a type's nesting and element counts and requires unique field names; `at` points at the type. */
  private checkTypeSize(t: TffType, at: string, where: string, declared = false): void {
    const problem = typeProblem(t);
    if (problem) {
      // A declared type is pointed into; an inferred one is pointed at by its node.
      throw new CheckError(declared ? at + problem.pointer : at, `${where}: ${problem.message}`);
    }
    const big = findOversized(t, this.limits.maxTensorElements);
    if (big) {
      throw new CheckError(
        at,
        `${where}: tensor ${formatType(big)} has more elements than the limit of ${this.limits.maxTensorElements}`,
      );
    }
  }
}

function findOversized(t: TffType, max: number): TensorType | null {
  switch (t.kind) {
    case 'tensor': {
      const n = numElements(t.shape.map((d) => d ?? 1));
      return n !== null && n > max ? t : null;
    }
    case 'struct':
      for (const f of t.fields) {
        const big = findOversized(f.type, max);
        if (big) return big;
      }
      return null;
    case 'sequence':
      return findOversized(t.element, max);
  }
}

/** Converts anything thrown while checking into a located detail. */
export function toDetail(e: unknown, pointer: string, label: string): ErrorDetail {
  if (e instanceof CheckError) return { path: e.path, message: e.message };
  if (e instanceof OpError) return { path: pointer, message: `${label}: ${e.message}` };
  return { path: pointer, message: `${label}: ${e instanceof Error ? e.message : String(e)}` };
}

/** Whether a type is a struct; narrows. */
export function isStructType(t: TffType): t is StructType {
  return t.kind === 'struct';
}
