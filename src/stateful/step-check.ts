import {
  assignabilityError,
  formatType,
  sequenceType,
  structType,
  tensorLeaves,
  typeProblem,
  type Signature,
  type TffType,
} from '../compute/types';
import type { ErrorDetail } from '../errors';
import { aggregationTypes, staticShapeError } from '../plan/form-fit';
import {
  secureSumsOf,
  type AggregateStep,
  type SecureSumStep,
  type ClientCallStep,
  type ClientSelectStep,
  type ClientStructStep,
  type Placement,
  type Program,
  type ServerCallStep,
} from './program';

/** Every problem found in a program, in the order found; a breach of the privacy rule decides the code. */
export class ProgramProblems {
  readonly details: ErrorDetail[] = [];
  /** Whether a value sits at the wrong placement or a minimum is too low (PROGRAM_PRIVACY_VIOLATION). */
  privacy = false;

  error(path: string, message: string): void {
    this.details.push({ path, message });
  }

  breach(path: string, message: string): void {
    this.privacy = true;
    this.details.push({ path, message });
  }
}

/** What the walk over a program's steps derived. */
export interface StepFacts {
  readonly placements: Map<string, Placement>;
  /** Every value whose type could be derived (all of them in a valid program). */
  readonly types: Map<string, TffType>;
  /** Computations by where a step runs them: server_call and report; client_call; zero, accumulate, merge. */
  readonly server: Set<string>;
  readonly clients: Set<string>;
  readonly workers: Set<string>;
  /** Indexes of the aggregate and secure_sum steps. */
  readonly aggregations: number[];
}

interface Value {
  readonly placement: Placement;
  readonly type: TffType | undefined;
  readonly step: number;
  disposedAt?: number;
}

const AGGREGATION_SLOTS = ['zero', 'accumulate', 'merge', 'report'] as const;

/**
 * Walks the steps in order as straight-line code: every name is defined once before it is used and not
 * used after it is disposed; every argument has the placement its step reads (docs/stateful.md, "Values and
 * placements"); every call's arguments fit its computation's parameter. `signatures` holds every
 * computation of the program, undefined for one that failed its own check (reported already), so that a
 * broken computation does not also fail every step that calls it.
 */
export function checkSteps(
  program: Program,
  signatures: ReadonlyMap<string, Signature | undefined>,
  problems: ProgramProblems,
): StepFacts {
  const facts: StepFacts = {
    placements: new Map(),
    types: new Map(),
    server: new Set(),
    clients: new Set(),
    workers: new Set(),
    aggregations: [],
  };
  const values = new Map<string, Value>();
  const error = (path: string, message: string) => problems.error(path, message);

  /** The value `name` read at `at` by a step that needs it at `want`; undefined after reporting why not. */
  const use = (name: string, at: string, want: Placement, why: string): Value | undefined => {
    const v = values.get(name);
    if (!v) return void error(at, `"${name}" is not defined by an earlier step`);
    if (v.disposedAt !== undefined)
      return void error(at, `"${name}" was disposed by step ${v.disposedAt} and cannot be used again`);
    if (v.placement !== want) {
      // Still typed on: a misplaced value's type may be wrong as well, and that is worth saying too.
      problems.breach(at, `"${name}" is a ${placementName(v.placement)}: ${why}`);
    }
    return v;
  };
  const define = (name: string, i: number, placement: Placement, type: TffType | undefined) => {
    const earlier = values.get(name);
    if (earlier)
      return error(`/steps/${i}/result`, `"${name}" is already defined by step ${earlier.step} (once only)`);
    values.set(name, { placement, type, step: i });
    facts.placements.set(name, placement);
    if (type) facts.types.set(name, type);
  };
  const computation = (name: string, at: string, where: Set<string>): Signature | undefined => {
    if (!signatures.has(name)) return void error(at, `unknown computation "${name}"`);
    where.add(name);
    return signatures.get(name);
  };

  const call = (step: ServerCallStep | ClientCallStep, i: number): TffType | undefined => {
    const at = `/steps/${i}`;
    const server = step.op === 'server_call';
    const why = server
      ? 'a server step reads server values only; a client value reaches the server only through aggregate or secure_sum'
      : 'a client step reads client values only; broadcast a server value to reach the devices';
    const args = (step.args ?? []).map((a, j) =>
      use(a, `${at}/args/${j}`, server ? 'server' : 'clients', why),
    );
    const sig = computation(step.fn, `${at}/fn`, server ? facts.server : facts.clients);
    if (!sig) return undefined;
    if (args.every((a) => a?.type))
      argumentErrors(
        step,
        sig,
        args.map((a) => a!.type!),
        at,
        error,
      );
    return sig.result;
  };

  program.steps.forEach((step, i) => {
    const at = `/steps/${i}`;
    switch (step.op) {
      case 'server_call':
        return define(step.result, i, 'server', call(step, i));
      case 'client_call':
        return define(step.result, i, 'clients', call(step, i));
      case 'broadcast': {
        const v = use(step.value, `${at}/value`, 'server', 'broadcast sends a server value to the devices');
        const why = v?.type && staticShapeError(v.type);
        if (why) error(`${at}/value`, `a broadcast value ${formatType(v.type!)} ${why}`);
        return define(step.result, i, 'clients', v?.type);
      }
      case 'client_data': {
        const spec = Object.hasOwn(program.client_data, step.collection)
          ? program.client_data[step.collection]
          : undefined;
        if (!spec) error(`${at}/collection`, `"${step.collection}" is not a collection of client_data`);
        return define(step.result, i, 'clients', spec && sequenceType(spec.element));
      }
      case 'client_struct':
        return define(step.result, i, 'clients', structOf(step, at, use, error));
      case 'client_select':
        return define(step.result, i, 'clients', selection(step, at, use, error));
      case 'aggregate': {
        facts.aggregations.push(i);
        return define(step.result, i, 'server', aggregate(step, i));
      }
      case 'secure_sum': {
        facts.aggregations.push(i);
        return define(step.result, i, 'server', secureSum(step, i));
      }
      case 'dispose':
        step.values.forEach((name, j) => {
          const v = use(name, `${at}/values/${j}`, 'clients', 'dispose drops values the devices hold');
          if (v?.placement === 'clients') v.disposedAt = i;
        });
        return;
    }
  });

  /** An aggregation's minimum against the cohort's. */
  function minimum(step: AggregateStep | SecureSumStep, at: string): void {
    const { cohort } = program;
    if (step.min_clients < cohort.min_clients) {
      problems.breach(
        `${at}/min_clients`,
        `min_clients ${step.min_clients} is less than the cohort's min_clients ${cohort.min_clients}`,
      );
    } else if (step.min_clients > cohort.target_clients) {
      error(
        `${at}/min_clients`,
        `min_clients ${step.min_clients} is more than the cohort's target_clients ${cohort.target_clients}, so the aggregation could never release a result`,
      );
    }
  }

  function aggregate(step: AggregateStep, i: number): TffType | undefined {
    const at = `/steps/${i}`;
    minimum(step, at);
    const v = use(step.value, `${at}/value`, 'clients', 'aggregate folds client values into a server value');
    const why = v?.type && staticShapeError(v.type);
    if (why) error(`${at}/value`, `an aggregated value ${formatType(v.type!)} ${why}`);
    const sigs = AGGREGATION_SLOTS.map((slot) =>
      computation(step[slot], `${at}/${slot}`, slot === 'report' ? facts.server : facts.workers),
    );
    const [zero, accumulate, merge, report] = sigs;
    if (!zero || !accumulate || !merge || !report) return undefined;
    const { R } = aggregationTypes(
      { zero, accumulate, merge, report },
      why ? undefined : v?.type,
      (slot, m) =>
        error(`${at}/${slot}`, `${slot} "${step[slot as (typeof AGGREGATION_SLOTS)[number]]}": ${m}`),
    );
    return R;
  }

  /** A secure sum's value: int32 tensors of fully known shape, summed into a server value of its type. */
  function secureSum(step: SecureSumStep, i: number): TffType | undefined {
    const at = `/steps/${i}`;
    minimum(step, at);
    const kinds = secureSumsOf(step);
    if (kinds.length !== 1) {
      error(
        at,
        `give exactly one of bitwidth, max_input and modulus (the secure sum's kind); the step gives ${kinds.length ? kinds.map((k) => k.kind).join(' and ') : 'none'}`,
      );
    }
    const v = use(step.value, `${at}/value`, 'clients', 'secure_sum sums client values into a server value');
    if (!v?.type) return undefined;
    const leaves = () => tensorLeaves(v.type!).map((l) => l.type);
    const why =
      staticShapeError(v.type) ??
      (leaves().length === 0
        ? 'has no tensors to sum'
        : leaves().some((t) => t.dtype !== 'int32')
          ? 'is not all int32: a secure sum adds integers'
          : undefined);
    if (why) return void error(`${at}/value`, `a securely summed value ${formatType(v.type)} ${why}`);
    return v.type;
  }

  return facts;
}

function placementName(p: Placement): string {
  return p === 'server' ? 'server value' : 'client value';
}

type Use = (name: string, at: string, want: Placement, why: string) => Value | undefined;
type Report = (path: string, message: string) => void;

/**
 * The arguments of a call against its computation's parameter: none takes no parameter, one is the
 * parameter, several are an unnamed struct of them in order (as `work` gets `<D, C>`).
 */
function argumentErrors(
  step: ServerCallStep | ClientCallStep,
  sig: Signature,
  args: readonly TffType[],
  at: string,
  error: Report,
): void {
  const fn = `computation "${step.fn}"`;
  const p = sig.parameter;
  const given = `${args.length} arg${args.length === 1 ? '' : 's'}`;
  if (args.length === 0) {
    if (p) error(`${at}/fn`, `${fn} takes ${formatType(p)}, but the step gives no args`);
    return;
  }
  if (!p) return error(`${at}/args`, `${fn} takes no parameter, but the step gives ${given}`);
  if (args.length === 1) {
    const why = assignabilityError(p, args[0]!);
    if (why)
      error(
        `${at}/args/0`,
        `${fn}'s parameter ${formatType(p)} does not accept ${formatType(args[0]!)}: ${why}`,
      );
    return;
  }
  if (p.kind !== 'struct' || p.fields.length !== args.length) {
    return error(`${at}/args`, `${fn} takes ${formatType(p)}, not a struct of the step's ${given}`);
  }
  args.forEach((t, j) => {
    const why = assignabilityError(p.fields[j]!.type, t);
    if (why)
      error(`${at}/args/${j}`, `${fn}'s parameter field ${j} does not accept ${formatType(t)}: ${why}`);
  });
}

/** The type of a client_struct's result, or undefined when a field's value is unknown. */
function structOf(step: ClientStructStep, at: string, use: Use, error: Report): TffType | undefined {
  const why = 'client_struct makes a struct of client values';
  const fields = step.fields.map((f, j) => use(f.value, `${at}/fields/${j}/value`, 'clients', why)?.type);
  if (!fields.every((t) => t)) return undefined;
  const type = structType(step.fields.map((f, j) => [f.name, fields[j]!]));
  const problem = typeProblem(type);
  if (problem) {
    // The pointer inside the type starts with the field that is wrong: `/fields/1/name`.
    const field = /^\/fields\/(\d+)/.exec(problem.pointer);
    return void error(field ? `${at}/fields/${field[1]}` : at, `client_struct: ${problem.message}`);
  }
  return type;
}

/** The type of a client_select's result, or undefined. */
function selection(step: ClientSelectStep, at: string, use: Use, error: Report): TffType | undefined {
  const t = use(step.value, `${at}/value`, 'clients', 'client_select reads a client struct')?.type;
  if (!t) return undefined;
  if (t.kind !== 'struct')
    return void error(`${at}/value`, `"${step.value}" is ${formatType(t)}, not a struct`);
  const field =
    typeof step.field === 'number' ? t.fields[step.field] : t.fields.find((f) => f.name === step.field);
  if (!field) return void error(`${at}/field`, `${formatType(t)} has no field ${JSON.stringify(step.field)}`);
  return field.type;
}
