/**
 * Writing a stateful program (docs/stateful.md) in code: named functions and computations as with the plan
 * builder, then the steps in order, each returning the name of the value it defines.
 */
import {
  BuildError,
  FunctionSet,
  type Body,
  type Built,
  type BuiltSignature,
  type NullaryBody,
} from '../compute/builder';
import type { TffType } from '../compute/types';
import { checkProgram } from './check';
import type { ClientDataSpec, SecureAggregation } from '../generated/plan';
import {
  PROGRAM_FORMAT,
  type Cohort,
  type Placement,
  type DisposeStep,
  type Program,
  type Step,
} from './program';

/** What a program says besides its computations and steps. */
export interface ProgramMeta {
  readonly name: string;
  readonly description?: string;
  readonly population: string;
  readonly client_data: Readonly<Record<string, ClientDataSpec>>;
  readonly cohort: Cohort;
}

/** The computations of an `aggregate` step and the fewest devices it may release a result over. */
export interface AggregateOptions {
  readonly zero: string;
  readonly accumulate: string;
  readonly merge: string;
  readonly report: string;
  readonly minClients: number;
  readonly deadlineS?: number;
  /** The result's name (default `<value>_sum`, made unique). */
  readonly result?: string;
}

/** A `secure_sum` step: exactly one of the three kinds' parameters, and the fewest devices it releases over. */
export interface SecureSumOptions {
  readonly bitwidth?: number;
  readonly maxInput?: number;
  readonly modulus?: number;
  readonly minClients: number;
  readonly deadlineS?: number;
  /** How the sum is masked (default SecAgg+). */
  readonly secureAggregation?: SecureAggregation;
  /** The result's name (default `<value>_secure_sum`, made unique). */
  readonly result?: string;
}

/** A step's optional result name; by default one is made from the step, unique by the step's index. */
export interface Named {
  readonly result?: string;
}

/** A step that defines a value, before its result is named. */
type UnnamedStep =
  Exclude<Step, DisposeStep> extends infer S ? (S extends unknown ? Omit<S, 'result'> : never) : never;

// Value names follow the IR's name pattern (schemas/computation.schema.json), so they read like node names.
const VALUE_NAME = /^(?!__proto__$)[A-Za-z_][A-Za-z0-9_.]*$/;

/**
 * Builds a program: `fn` and `computation` as with the plan builder, then steps (`serverCall`,
 * `broadcast`, `clientData`, `clientCall`, `clientStruct`, `clientSelect`, `aggregate`, `dispose`) in the
 * order they run, and `output`s. Each step returns its value's name. The builder keeps the placements
 * straight as it goes (a client step takes client values, a server step server values, a disposed value
 * cannot be used); types, minimums and the privacy rule are the checker's.
 */
export class ProgramBuilder extends FunctionSet {
  private readonly computations = new Map<string, Built>();
  private readonly steps: Step[] = [];
  /** Every value defined so far, with its placement; deleted when disposed. */
  private readonly values = new Map<string, Placement>();
  private readonly disposed = new Set<string>();
  private readonly outputs = new Map<string, string>();

  /** Builds a named computation for the steps to call; returns its signature. */
  computation(name: string, parameterType: TffType, body: Body): BuiltSignature;
  computation(name: string, parameterType: undefined, body: NullaryBody): BuiltSignature;
  computation(name: string, parameterType: TffType | undefined, body: Body | NullaryBody): BuiltSignature {
    if (!VALUE_NAME.test(name))
      throw new BuildError(`computation name "${name}" must match ${VALUE_NAME.source}`);
    if (this.computations.has(name)) throw new BuildError(`computation ${name} is defined twice`);
    const built = this.buildComputation(name, parameterType, body);
    this.computations.set(name, built);
    return built.signature;
  }

  /** The signature of a computation built so far. */
  signature(name: string): BuiltSignature | undefined {
    return this.computations.get(name)?.signature;
  }

  /** `fn(args)` on the server: a server value. */
  serverCall(fn: string, args: readonly string[] = [], o: Named = {}): string {
    this.use(args, 'server', 'server_call');
    this.computationNamed(fn, 'server_call');
    return this.define({ op: 'server_call', fn, ...(args.length ? { args } : {}) }, o.result, fn, 'server');
  }

  /** A server value sent to every device. */
  broadcast(value: string, o: Named = {}): string {
    this.use([value], 'server', 'broadcast');
    return this.define({ op: 'broadcast', value }, o.result, `${value}_c`, 'clients');
  }

  /** The device's batches of a collection of the program's client_data. */
  clientData(collection: string, o: Named = {}): string {
    return this.define({ op: 'client_data', collection }, o.result, collection, 'clients');
  }

  /** `fn(args)` on each device, on its own members of the args. */
  clientCall(fn: string, args: readonly string[] = [], o: Named = {}): string {
    this.use(args, 'clients', 'client_call');
    if (this.computationNamed(fn, 'client_call').serverOnly) {
      throw new BuildError(`client_call ${fn}: runs on devices, so it may not use random_normal`);
    }
    return this.define({ op: 'client_call', fn, ...(args.length ? { args } : {}) }, o.result, fn, 'clients');
  }

  /** A struct of client values, unnamed fields where `name` is left out. */
  clientStruct(fields: readonly { readonly name?: string; readonly value: string }[], o: Named = {}): string {
    this.use(
      fields.map((f) => f.value),
      'clients',
      'client_struct',
    );
    return this.define({ op: 'client_struct', fields }, o.result, 'struct', 'clients');
  }

  /** A field (name or position) of a client struct. */
  clientSelect(value: string, field: string | number, o: Named = {}): string {
    this.use([value], 'clients', 'client_select');
    return this.define({ op: 'client_select', value, field }, o.result, `${value}_${field}`, 'clients');
  }

  /** The devices' members of a client value folded into a server value (the only way one gets there). */
  aggregate(value: string, a: AggregateOptions): string {
    this.use([value], 'clients', 'aggregate');
    for (const fn of [a.zero, a.accumulate, a.merge]) {
      if (this.computationNamed(fn, 'aggregate').serverOnly) {
        throw new BuildError(`aggregate ${fn}: runs on aggregation workers, so it may not use random_normal`);
      }
    }
    this.computationNamed(a.report, 'aggregate');
    const step: UnnamedStep = {
      op: 'aggregate',
      value,
      zero: a.zero,
      accumulate: a.accumulate,
      merge: a.merge,
      report: a.report,
      min_clients: a.minClients,
      ...(a.deadlineS !== undefined ? { deadline_s: a.deadlineS } : {}),
    };
    return this.define(step, a.result, `${value}_sum`, 'server');
  }

  /** The devices' members of an int32 client value summed as one of TFF's secure sums, under SecAgg. */
  secureSum(value: string, o: SecureSumOptions): string {
    this.use([value], 'clients', 'secure_sum');
    const kinds = [o.bitwidth, o.maxInput, o.modulus].filter((k) => k !== undefined);
    if (kinds.length !== 1)
      throw new BuildError('secureSum: give exactly one of bitwidth, maxInput and modulus');
    const step: UnnamedStep = {
      op: 'secure_sum',
      value,
      ...(o.bitwidth !== undefined ? { bitwidth: o.bitwidth } : {}),
      ...(o.maxInput !== undefined ? { max_input: o.maxInput } : {}),
      ...(o.modulus !== undefined ? { modulus: o.modulus } : {}),
      min_clients: o.minClients,
      ...(o.deadlineS !== undefined ? { deadline_s: o.deadlineS } : {}),
      ...(o.secureAggregation ? { secure_aggregation: o.secureAggregation } : {}),
    };
    return this.define(step, o.result, `${value}_secure_sum`, 'server');
  }

  /** The devices drop these client values. */
  dispose(values: readonly string[]): void {
    this.use(values, 'clients', 'dispose');
    for (const v of values) this.disposed.add(v);
    this.steps.push({ op: 'dispose', values: [...values] });
  }

  /** Releases a server value as the program's output `name`. */
  output(name: string, value: string): void {
    this.use([value], 'server', 'output');
    if (this.outputs.has(name)) throw new BuildError(`output ${name} is defined twice`);
    this.outputs.set(name, value);
  }

  /** Assembles the program; with `check` (the default) it must pass `checkProgram`, which throws otherwise. */
  build(meta: ProgramMeta, options: { check?: boolean } = {}): Program {
    for (const step of this.steps) {
      if (step.op === 'client_data' && !Object.hasOwn(meta.client_data, step.collection)) {
        throw new BuildError(`client_data ${step.collection}: not a collection of the program's client_data`);
      }
    }
    const program: Program = {
      format: PROGRAM_FORMAT,
      name: meta.name,
      ...(meta.description !== undefined ? { description: meta.description } : {}),
      population: meta.population,
      client_data: meta.client_data,
      cohort: meta.cohort,
      ...(Object.keys(this.functionTable).length ? { functions: { ...this.functionTable } } : {}),
      computations: Object.fromEntries([...this.computations].map(([n, b]) => [n, b.computation])),
      steps: this.steps,
      outputs: Object.fromEntries(this.outputs),
    };
    // As the plan builder does: through JSON, so the program owns its type objects (no sharing).
    const own = JSON.parse(JSON.stringify(program)) as Program;
    // The server's own check, so that a program that builds is a program the server accepts.
    if (options.check ?? true) checkProgram(own);
    return own;
  }

  private computationNamed(fn: string, op: string): Built {
    const built = this.computations.get(fn);
    if (!built) throw new BuildError(`${op} ${fn}: no computation of that name (define it first)`);
    return built;
  }

  /** Checks that the names are defined, not disposed, and placed where the step takes them. */
  private use(names: readonly string[], placement: Placement, op: string): void {
    for (const name of names) {
      if (this.disposed.has(name)) throw new BuildError(`${op}: value ${name} was disposed`);
      const at = this.values.get(name);
      if (at === undefined) throw new BuildError(`${op}: no value ${name}`);
      if (at !== placement) {
        throw new BuildError(
          `${op}: value ${name} is placed at the ${at}, the step takes ${placement} values` +
            (placement === 'server'
              ? ' (a client value reaches the server only through aggregate or secure_sum)'
              : ''),
        );
      }
    }
  }

  /**
   * Adds a step defining a value named `given` (which must be new) or, by default, `hint`, made unique with
   * the step's index when taken.
   */
  private define(step: UnnamedStep, given: string | undefined, hint: string, placement: Placement): string {
    if (given !== undefined) {
      if (!VALUE_NAME.test(given))
        throw new BuildError(`value name "${given}" must match ${VALUE_NAME.source}`);
      if (this.values.has(given)) throw new BuildError(`value ${given} is defined twice`);
      return this.push(step, given, placement);
    }
    const base = hint.replace(/[^A-Za-z0-9_.]/g, '_');
    let name = VALUE_NAME.test(base) ? base : `v_${base}`;
    for (let k = this.steps.length; this.values.has(name); k++) name = `${base}_${k}`;
    return this.push(step, name, placement);
  }

  private push(step: UnnamedStep, name: string, placement: Placement): string {
    this.values.set(name, placement);
    this.steps.push({ ...step, result: name } as Step);
    return name;
  }
}
