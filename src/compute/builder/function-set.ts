import type { Computation } from '../../generated/computation';
import type { TffType } from '../types';
import { ComputationBuilder } from './computation-builder';
import { BuildError, type FnRef, type Handle } from './handle';

/** The body of a computation with a parameter. */
export type Body = (b: ComputationBuilder, param: Handle) => Handle;
/** The body of a computation without a parameter, `( -> T)`. */
export type NullaryBody = (b: ComputationBuilder) => Handle;

/** The type signature of a built computation. */
export interface BuiltSignature {
  readonly parameter?: TffType;
  readonly result: TffType;
}

/** A built computation, its signature and whether it (or a function it reaches) uses a server-only op. */
export interface Built {
  readonly computation: Computation;
  readonly signature: BuiltSignature;
  readonly serverOnly: boolean;
}

// The schema's Name pattern (schemas/computation.schema.json).
const FUNCTION_NAME = /^(?!__proto__$)[A-Za-z_][A-Za-z0-9_.]*$/;

/**
 * Named functions (`fn`) and the building of computations that call them: what the plan builder and the
 * program builder (src/stateful/builder.ts) share, so that model pieces written against it (src/plans) serve
 * both. A computation may call only functions registered with the same set.
 */
export class FunctionSet {
  // Null prototype: a function name is data, never a key that could reach or replace Object.prototype.
  private readonly functions: Record<string, Computation> = Object.create(null) as Record<
    string,
    Computation
  >;
  private readonly refs = new Map<string, FnRef>();

  /** Registers a named function for call/fold/repeat/value_and_grad and returns a reference to it. */
  fn(name: string, parameterType: TffType, body: Body): FnRef;
  fn(name: string, parameterType: undefined, body: NullaryBody): FnRef;
  fn(name: string, parameterType: TffType | undefined, body: Body | NullaryBody): FnRef {
    if (!FUNCTION_NAME.test(name) || name.length > 128)
      throw new BuildError(
        `function name "${name}" must match ${FUNCTION_NAME.source} (at most 128 characters; "__proto__" is reserved)`,
      );
    if (this.refs.has(name)) throw new BuildError(`function "${name}" is defined twice`);
    const built = this.buildComputation(`function ${name}`, parameterType, body);
    this.functions[name] = built.computation;
    const ref: FnRef = {
      name,
      ...(built.signature.parameter ? { parameter: built.signature.parameter } : {}),
      result: built.signature.result,
      serverOnly: built.serverOnly,
    };
    this.refs.set(name, ref);
    return ref;
  }

  /** The named functions registered so far, e.g. to run a computation with the Interpreter before `build`. */
  get functionTable(): Readonly<Record<string, Computation>> {
    return this.functions;
  }

  /** Builds one computation from its body; `label` names it in errors. */
  protected buildComputation(
    label: string,
    parameterType: TffType | undefined,
    body: Body | NullaryBody,
  ): Built {
    const b = new ComputationBuilder(label, parameterType);
    const result = parameterType ? (body as Body)(b, b.param) : (body as NullaryBody)(b);
    for (const ref of b.functionsCalled) {
      if (this.refs.get(ref.name) !== ref)
        throw new BuildError(`${label}: function "${ref.name}" was not defined by this builder`);
    }
    const computation = b.finish(result);
    const signature: BuiltSignature = parameterType
      ? { parameter: parameterType, result: result.type }
      : { result: result.type };
    return { computation, signature, serverOnly: b.serverOnly };
  }
}
