/**
 * A program's `aggregate` and `secure_sum` steps as one-round MapReduce-form plans (docs/stateful.md,
 * "Aggregations as one-round plans"), so that contributions go through exactly the machinery a round's
 * uploads do: task tokens, the upload route's checks, the aggregation workers' partials and exactly-once
 * commits, SecAgg for a secure sum, the minimum, the deadline and finalize. Only an aggregate's `zero`,
 * `accumulate`, `merge` and `report` carry the program's code; the rest is the plumbing that makes the
 * result the plan's next state:
 *
 * - S = R (the aggregate) or V (the secure sum); `initialize` is zeros of S, and `update` answers that
 *   aggregate as the state, read back by the driver as a bundle (exact, unlike the JSON output);
 * - C = `<>`: `prepare` broadcasts nothing, and `work` ignores its data and answers zeros in the value's
 *   place. Nobody runs it: a session's device contributes the value it holds, and its client program
 *   carries the program's computations, never this plan's `work`. It exists so that the plan type-checks
 *   with the contribution as its upload.
 */
import type { Signature, TffType } from '../compute/types';
import type { Computation } from '../generated/computation';
import type { Plan, SecureAggregation } from '../generated/plan';
import { AppError } from '../errors';
import { SECURE_SUM_KINDS, secureSumSpec, type Program, type SecureSumStep } from './program';

/** The format tag of plans; the aggregation plan is an ordinary plan of it. */
const PLAN_FORMAT = 'roundhouse.plan/v1';

/** What the driver decides when it opens an aggregation: how many devices, how long. */
export interface AggregationSchedule {
  /** Devices asked to contribute (the live sessions). */
  readonly clients: number;
  /** How long the aggregation takes contributions (seconds). */
  readonly deadlineS: number;
}

/** What the plans read of a checked program: check.ts's `CheckedProgram` has it (check.ts imports this module). */
export interface ProgramTypes {
  readonly program: Program;
  readonly signatures: Readonly<Record<string, Signature>>;
  readonly types: ReadonlyMap<string, TffType>;
}

/**
 * The plan that runs step `index` (an `aggregate`, or a `secure_sum`: {@link secureSumPlan}) of a checked
 * program. Throws PLAN_TYPE_ERROR when an aggregate's result has a dimension not known statically: it
 * becomes a plan's server state.
 */
export function aggregationPlan(checked: ProgramTypes, index: number, schedule: AggregationSchedule): Plan {
  const { program, signatures } = checked;
  const step = program.steps[index];
  if (step?.op === 'secure_sum')
    return secureSumPlan(program, index, checked.types.get(step.value)!, schedule);
  if (step?.op !== 'aggregate') throw new Error(`step ${index} is not an aggregation`);
  const accumulateParam = signatures[step.accumulate]!.parameter!;
  if (accumulateParam.kind !== 'struct') throw new Error(`${step.accumulate} does not take <A, U>`);
  const U = accumulateParam.fields[1]!.type;
  const R = signatures[step.report]!.result;
  if (!fullyKnown(R)) {
    throw new AppError(
      'PLAN_TYPE_ERROR',
      `aggregate ${step.result}: its report must have fully known shapes`,
      [{ path: `/steps/${index}`, message: 'the result of report has a dimension of unknown size' }],
    );
  }
  return {
    ...onePlan(program, `aggregate ${step.result} (step ${index})`, step, schedule, {
      selection_timeout_s: schedule.deadlineS,
    }),
    initialize: zerosComputation(R),
    computations: {
      prepare: prepareComputation(R),
      work: workComputation(program, 0, U),
      zero: program.computations[step.zero]!,
      accumulate: program.computations[step.accumulate]!,
      merge: program.computations[step.merge]!,
      report: program.computations[step.report]!,
      secure_sum_bitwidth: emptyComputation(),
      secure_sum_max_input: emptyComputation(),
      secure_modular_sum_modulus: emptyComputation(),
      update: updateComputation(R, 0),
    },
    ...(program.functions ? { functions: program.functions } : {}),
  } as Plan;
}

/**
 * The plan that runs step `index` (a `secure_sum` of a value of type V) of a program: U = A = R = `<>`, and V
 * is the secure-sum update of the step's kind (V1 bitwidth, V2 max_input, V3 modulus), with the step's
 * parameter for every tensor; S = V, `initialize` is zeros of V and `update` makes the sum the state. Under
 * SecAgg (the default, SecAgg+), selection and the key exchange take a quarter of the deadline each unless
 * the step's `secure_aggregation` says otherwise, so that the uploads have the half that is left.
 */
export function secureSumPlan(
  program: Program,
  index: number,
  V: TffType,
  schedule: AggregationSchedule,
): Plan {
  const step = program.steps[index] as SecureSumStep;
  const { kind, parameter } = secureSumSpec(step);
  // V's place in <U, V1, V2, V3> and in update's <R, V1sum, V2sum, V3sum>.
  const slot = 1 + SECURE_SUM_KINDS.indexOf(kind);
  const secure = secureSetting(step, schedule.deadlineS);
  const empty: TffType = { kind: 'struct', fields: [] };
  const pair: TffType = { kind: 'struct', fields: [{ type: empty }, { type: empty }] };
  const param = (k: number): Computation =>
    k === slot
      ? {
          nodes: [{ name: 'p', op: 'const', attrs: { dtype: 'int32', shape: [], value: parameter } }],
          result: 'p',
        }
      : emptyComputation();
  return {
    ...onePlan(program, `secure_sum ${step.result} (${kind} ${parameter}, step ${index})`, step, schedule, {
      selection_timeout_s: secure.protocol === 'none' ? schedule.deadlineS : schedule.deadlineS / 4,
      secure_aggregation: secure,
    }),
    initialize: zerosComputation(V),
    computations: {
      prepare: prepareComputation(V),
      work: workComputation(program, slot, V),
      zero: emptyComputation(),
      accumulate: emptyComputation(pair),
      merge: emptyComputation(pair),
      report: emptyComputation(empty),
      secure_sum_bitwidth: param(1),
      secure_sum_max_input: param(2),
      secure_modular_sum_modulus: param(3),
      update: updateComputation(V, slot),
    },
  } as Plan;
}

/** A secure_sum step's masking: SecAgg+ unless it says otherwise, its timeouts a quarter of the deadline. */
function secureSetting(step: SecureSumStep, deadlineS: number): SecureAggregation {
  const given: SecureAggregation = step.secure_aggregation ?? { protocol: 'secagg+' };
  if (given.protocol === 'none') return given;
  return {
    ...given,
    sharing_timeout_s: given.sharing_timeout_s ?? deadlineS / 4,
    unmasking_timeout_s: given.unmasking_timeout_s ?? deadlineS / 4,
  };
}

/**
 * What every aggregation's plan has alike: its names, its data (for work's type only) and its schedule of
 * one round over the devices asked, with the step's minimum and deadline; `timing` adds the rest.
 */
function onePlan(
  program: Program,
  what: string,
  step: { readonly result: string; readonly min_clients: number },
  schedule: AggregationSchedule,
  timing: Pick<Plan['schedule'], 'selection_timeout_s' | 'secure_aggregation'>,
) {
  const [collection, spec] = Object.entries(program.client_data)[0]!;
  return {
    format: PLAN_FORMAT,
    name: `${program.name}.${step.result}`,
    description: `${what} of program ${program.name}`,
    client_data: { ...spec, collection },
    schedule: {
      rounds: 1,
      target_clients: schedule.clients,
      over_selection: 1,
      min_reports: step.min_clients,
      min_clients_in_aggregate: step.min_clients,
      selection_timeout_s: timing.selection_timeout_s,
      reporting_deadline_s: schedule.deadlineS,
      ...(timing.secure_aggregation ? { secure_aggregation: timing.secure_aggregation } : {}),
    },
  };
}

/** `(S -> <>)`: nothing is broadcast; what devices hold came from the program's own broadcasts. */
function prepareComputation(S: TffType): Computation {
  return { parameter: { name: 'arg', type: S }, nodes: [{ name: 'c', op: 'struct' }], result: 'c' };
}

/** `(<D, <>> -> <U, V1, V2, V3>)`: zeros of `t` in field `slot`, the other three empty. Nobody runs it. */
function workComputation(program: Program, slot: number, t: TffType): Computation {
  const spec = Object.values(program.client_data)[0]!;
  const empty: TffType = { kind: 'struct', fields: [] };
  const nodes: Computation['nodes'] = [];
  const zeros = zerosInto(t, nodes, 'u');
  nodes.push({ name: 'none', op: 'struct' });
  nodes.push({ name: 'out', op: 'struct', args: [0, 1, 2, 3].map((k) => (k === slot ? zeros : 'none')) });
  return {
    parameter: {
      name: 'arg',
      type: {
        kind: 'struct',
        fields: [
          { name: 'data', type: { kind: 'sequence', element: spec.element as TffType } },
          { name: 'broadcast', type: empty },
        ],
      },
    },
    nodes,
    result: 'out',
  };
}

/** `() -> zeros of t`. */
function zerosComputation(t: TffType): Computation {
  const nodes: Computation['nodes'] = [];
  const result = zerosInto(t, nodes, 'z');
  return { nodes, result };
}

/**
 * `(<S, <R, V1sum, V2sum, V3sum>> -> <field slot, <>>)`: the aggregate (slot 0, R = S) or a secure sum (its
 * slot, of type S; R is then `<>`) becomes the state; no output.
 */
function updateComputation(S: TffType, slot: number): Computation {
  const empty: TffType = { kind: 'struct', fields: [] };
  const names = ['report', 'bitwidth_sum', 'max_input_sum', 'modular_sum'];
  return {
    parameter: {
      name: 'arg',
      type: {
        kind: 'struct',
        fields: [
          { name: 'state', type: S },
          {
            name: 'aggregates',
            type: {
              kind: 'struct',
              fields: names.map((name, k) => ({ name, type: k === slot ? S : empty })),
            },
          },
        ],
      },
    },
    nodes: [
      { name: 'aggregates', op: 'field', args: ['arg'], attrs: { name: 'aggregates' } },
      { name: 'aggregate', op: 'field', args: ['aggregates'], attrs: { name: names[slot]! } },
      { name: 'none', op: 'struct' },
      { name: 'out', op: 'struct', args: ['aggregate', 'none'] },
    ],
    result: 'out',
  };
}

/** `(p -> <>)`, or `( -> <>)` without a parameter type. */
function emptyComputation(parameter?: TffType): Computation {
  return {
    ...(parameter ? { parameter: { name: 'arg', type: parameter } } : {}),
    nodes: [{ name: 'e', op: 'struct' }],
    result: 'e',
  };
}

/** Appends nodes that build zeros of `t` (fully known shapes) and returns the name of the result node. */
function zerosInto(t: TffType, nodes: Computation['nodes'], prefix: string): string {
  if (t.kind === 'tensor') {
    nodes.push({
      name: prefix,
      op: 'const',
      attrs: { dtype: t.dtype, shape: t.shape as number[], value: t.dtype === 'bool' ? false : 0 },
    });
    return prefix;
  }
  if (t.kind !== 'struct') throw new Error(`no zeros of a ${t.kind}`);
  const args = t.fields.map((f, i) => zerosInto(f.type, nodes, `${prefix}_${i}`));
  const names = t.fields.map((f) => f.name ?? null);
  nodes.push({
    name: prefix,
    op: 'struct',
    ...(args.length ? { args } : {}),
    ...(names.some((n) => n !== null) ? { attrs: { names } } : {}),
  });
  return prefix;
}

/** Whether every tensor of `t` has a fully known shape. */
function fullyKnown(t: TffType): boolean {
  if (t.kind === 'tensor') return t.shape.every((d) => d !== null);
  if (t.kind === 'struct') return t.fields.every((f) => fullyKnown(f.type));
  return false;
}
