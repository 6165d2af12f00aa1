import type { Computation } from '../../generated/computation';
import type {
  ClientDataSpec,
  DifferentialPrivacy,
  MapReduceForm,
  Plan,
  Schedule,
  UpdateBounds,
} from '../../generated/plan';
import { checkPlan, FORM_SLOTS } from '../../plan/validate';
import type { TffType } from '../types';
import { ComputationBuilder } from './computation-builder';
import { BuildError, type FnRef, type Handle } from './handle';

/** A computation slot of a plan: the form's ten, plus `initialize` and the optional `evaluate`. */
export type Slot = 'initialize' | (typeof FORM_SLOTS)[number] | 'evaluate';

/** The body of a computation with a parameter. */
export type Body = (b: ComputationBuilder, param: Handle) => Handle;
/** The body of a computation without a parameter, `( -> T)`. */
export type NullaryBody = (b: ComputationBuilder) => Handle;

/** The type signature of a built computation. */
export interface BuiltSignature {
  readonly parameter?: TffType;
  readonly result: TffType;
}

/** What a plan says besides its computations. */
export interface PlanMeta {
  readonly name: string;
  readonly description?: string;
  readonly population?: string;
  readonly client_data: ClientDataSpec;
  readonly schedule: Schedule;
  /** Bounds the server enforces on uploaded updates (docs/update-bounds.md). */
  readonly update_bounds?: UpdateBounds;
  /** Differential privacy the server applies (docs/server.md, "Differential privacy"). */
  readonly dp?: DifferentialPrivacy;
}

// The schema's Name pattern (schemas/computation.schema.json).
const FUNCTION_NAME = /^(?!__proto__$)[A-Za-z_][A-Za-z0-9_.]*$/;

// Computations that clients or aggregation workers run: the server-only random_normal may not reach them.
const CLIENT_OR_WORKER: readonly Slot[] = ['work', 'zero', 'accumulate', 'merge'];

interface Built {
  readonly computation: Computation;
  readonly signature: BuiltSignature;
  readonly serverOnly: boolean;
}

/**
 * Builds a plan in code: named functions first (`fn`), then the form's computations (`computation`), then
 * `build`, which assembles the plan JSON and, by default, runs the same `checkPlan` the server runs, so a
 * plan that builds is a plan the server accepts.
 */
export class PlanBuilder {
  // Null prototype: a function name is data, never a key that could reach or replace Object.prototype.
  private readonly functions: Record<string, Computation> = Object.create(null) as Record<
    string,
    Computation
  >;
  private readonly refs = new Map<string, FnRef>();
  private readonly slots = new Map<Slot, Built>();

  /** Registers a named function for call/fold/repeat/value_and_grad and returns a reference to it. */
  fn(name: string, parameterType: TffType, body: Body): FnRef;
  fn(name: string, parameterType: undefined, body: NullaryBody): FnRef;
  fn(name: string, parameterType: TffType | undefined, body: Body | NullaryBody): FnRef {
    if (!FUNCTION_NAME.test(name) || name.length > 128)
      throw new BuildError(
        `function name "${name}" must match ${FUNCTION_NAME.source} (at most 128 characters; "__proto__" is reserved)`,
      );
    if (this.refs.has(name)) throw new BuildError(`function "${name}" is defined twice`);
    const built = this.run(`function ${name}`, parameterType, body);
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

  /** Builds one of the plan's computations; returns its signature (e.g. zero's result is A). */
  computation(slot: Slot, parameterType: TffType, body: Body): BuiltSignature;
  computation(slot: Slot, parameterType: undefined, body: NullaryBody): BuiltSignature;
  computation(slot: Slot, parameterType: TffType | undefined, body: Body | NullaryBody): BuiltSignature {
    if (this.slots.has(slot)) throw new BuildError(`computation ${slot} is defined twice`);
    const built = this.run(slot, parameterType, body);
    if (built.serverOnly && CLIENT_OR_WORKER.includes(slot)) {
      throw new BuildError(
        `${slot}: runs on clients or aggregation workers, so it may not use random_normal (directly or through a function)`,
      );
    }
    this.slots.set(slot, built);
    return built.signature;
  }

  /** The named functions registered so far, e.g. to run a computation with the Interpreter before `build`. */
  get functionTable(): Readonly<Record<string, Computation>> {
    return this.functions;
  }

  /** A computation built so far. */
  computationOf(slot: Slot): Computation | undefined {
    return this.slots.get(slot)?.computation;
  }

  /** The signature of a computation built so far. */
  signature(slot: Slot): BuiltSignature | undefined {
    return this.slots.get(slot)?.signature;
  }

  /** Assembles the plan; with `check` (the default) it must pass `checkPlan`, which throws otherwise. */
  build(meta: PlanMeta, options: { check?: boolean } = {}): Plan {
    const missing = ['initialize', ...FORM_SLOTS].filter((s) => !this.slots.has(s as Slot));
    if (missing.length)
      throw new BuildError(`plan ${meta.name}: computations not defined: ${missing.join(', ')}`);
    const form = Object.fromEntries(
      FORM_SLOTS.map((s) => [s, this.slots.get(s)!.computation]),
    ) as unknown as MapReduceForm;
    const evaluate = this.slots.get('evaluate')?.computation;
    const plan: Plan = {
      format: 'roundhouse.plan/v1',
      name: meta.name,
      ...(meta.description !== undefined ? { description: meta.description } : {}),
      ...(meta.population !== undefined ? { population: meta.population } : {}),
      client_data: meta.client_data,
      schedule: meta.schedule,
      initialize: this.slots.get('initialize')!.computation,
      computations: form,
      ...(Object.keys(this.functions).length ? { functions: { ...this.functions } } : {}),
      ...(evaluate ? { evaluate } : {}),
      ...(meta.update_bounds !== undefined ? { update_bounds: meta.update_bounds } : {}),
      ...(meta.dp !== undefined ? { dp: meta.dp } : {}),
    };
    // The builder reuses type objects across computations (a handle's type becomes a parameter's type);
    // a copy gives the plan objects of its own, so that editing one computation never changes another
    // (through JSON, which is what a plan is: structuredClone would keep the sharing).
    const own = JSON.parse(JSON.stringify(plan)) as Plan;
    if (options.check ?? true) checkPlan(own);
    return own;
  }

  private run(label: string, parameterType: TffType | undefined, body: Body | NullaryBody): Built {
    const b = new ComputationBuilder(label, parameterType);
    const result = parameterType ? (body as Body)(b, b.param) : (body as NullaryBody)(b);
    for (const ref of b.functionsCalled) {
      if (this.refs.get(ref.name) !== ref)
        throw new BuildError(`${label}: function "${ref.name}" was not defined by this plan builder`);
    }
    const computation = b.finish(result);
    const signature: BuiltSignature = parameterType
      ? { parameter: parameterType, result: result.type }
      : { result: result.type };
    return { computation, signature, serverOnly: b.serverOnly };
  }
}
