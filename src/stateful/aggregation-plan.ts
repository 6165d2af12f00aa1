/**
 * A program's `aggregate` step as a one-round MapReduce-form plan (docs/stateful.md, "Running a program"),
 * so that contributions go through exactly the machinery a round's uploads do: task tokens, the upload
 * route's checks against U, the aggregation workers' partials and exactly-once commits, the minimum, the
 * deadline and finalize. Only `zero`, `accumulate`, `merge` and `report` carry the program's code; the rest
 * is the plumbing that makes the result the plan's next state:
 *
 * - S = R (the aggregate); `initialize` is zeros of R, and `update(S, <R, ...>) = <R, <>>`, so the state
 *   after the round is the aggregate, read back by the driver as a bundle (exact, unlike the JSON output);
 * - C = `<>`: `prepare` broadcasts nothing, and `work` ignores its data and answers zeros of U. Nobody runs
 *   it: a session's device contributes the value it holds, and its client program carries the program's
 *   computations, never this plan's `work`. It exists so that the plan type-checks with U as its upload.
 */
import type { TffType } from '../compute/types';
import type { Computation } from '../generated/computation';
import type { Plan, SecureAggregation } from '../generated/plan';
import { AppError } from '../errors';
import type { CheckedProgram } from './check';
import { SECURE_SUM_KINDS, secureSumsOf, type Program, type SecureSumStep } from './program';

/** The format tag of plans; the aggregation plan is an ordinary plan of it. */
const PLAN_FORMAT = 'roundhouse.plan/v1';

/** What the driver decides when it opens an aggregation: how many devices, how long. */
export interface AggregationSchedule {
  /** Devices asked to contribute (the live sessions). */
  readonly clients: number;
  /** How long the aggregation takes contributions (seconds). */
  readonly deadlineS: number;
}

/**
 * The plan that runs step `index` (an `aggregate`) of a checked program. Throws PLAN_TYPE_ERROR when the
 * aggregate's result has a dimension not known statically: it becomes a plan's server state.
 */
export function aggregationPlan(checked: CheckedProgram, index: number, schedule: AggregationSchedule): Plan {
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
  const [collection, spec] = Object.entries(program.client_data)[0]!;
  const empty: TffType = { kind: 'struct', fields: [] };
  const D: TffType = { kind: 'sequence', element: spec.element as TffType };
  return {
    format: PLAN_FORMAT,
    name: `${program.name}.${step.result}`,
    description: `aggregate ${step.result} (step ${index}) of program ${program.name}`,
    client_data: { ...spec, collection },
    schedule: {
      rounds: 1,
      target_clients: schedule.clients,
      over_selection: 1,
      min_reports: step.min_clients,
      min_clients_in_aggregate: step.min_clients,
      selection_timeout_s: schedule.deadlineS,
      reporting_deadline_s: schedule.deadlineS,
    },
    initialize: zerosComputation(R),
    computations: {
      prepare: { parameter: { name: 'arg', type: R }, nodes: [{ name: 'c', op: 'struct' }], result: 'c' },
      work: workComputation(D, U),
      zero: program.computations[step.zero]!,
      accumulate: program.computations[step.accumulate]!,
      merge: program.computations[step.merge]!,
      report: program.computations[step.report]!,
      secure_sum_bitwidth: emptyStruct(),
      secure_sum_max_input: emptyStruct(),
      secure_modular_sum_modulus: emptyStruct(),
      update: updateComputation(R),
    },
    ...(program.functions ? { functions: program.functions } : {}),
  } as Plan;

  function workComputation(data: TffType, u: TffType): Computation {
    const nodes: Computation['nodes'] = [];
    const zerosOfU = zerosInto(u, nodes, 'u');
    nodes.push({ name: 'none', op: 'struct' });
    nodes.push({ name: 'out', op: 'struct', args: [zerosOfU, 'none', 'none', 'none'] });
    return {
      parameter: {
        name: 'arg',
        type: {
          kind: 'struct',
          fields: [
            { name: 'data', type: data },
            { name: 'broadcast', type: empty },
          ],
        },
      },
      nodes,
      result: 'out',
    };
  }
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
  const [{ kind, param }] = secureSumsOf(step) as [ReturnType<typeof secureSumsOf>[number]];
  const slot = SECURE_SUM_KINDS.indexOf(kind);
  const empty: TffType = { kind: 'struct', fields: [] };
  const [collection, spec] = Object.entries(program.client_data)[0]!;
  const D: TffType = { kind: 'sequence', element: spec.element as TffType };
  const secure = secureSetting(step, schedule.deadlineS);
  const quarter = schedule.deadlineS / 4;
  const pair = (a: TffType, b: TffType): TffType => ({
    kind: 'struct',
    fields: [{ type: a }, { type: b }],
  });
  const emptyOf = (parameter?: TffType): Computation => ({
    ...(parameter ? { parameter: { name: 'arg', type: parameter } } : {}),
    nodes: [{ name: 'e', op: 'struct' }],
    result: 'e',
  });
  const paramOf = (k: number): Computation =>
    k === slot
      ? {
          nodes: [{ name: 'p', op: 'const', attrs: { dtype: 'int32', shape: [], value: param } }],
          result: 'p',
        }
      : emptyOf();
  const workNodes: Computation['nodes'] = [];
  const zerosOfV = zerosInto(V, workNodes, 'v');
  workNodes.push({ name: 'none', op: 'struct' });
  workNodes.push({
    name: 'out',
    op: 'struct',
    args: ['none', ...SECURE_SUM_KINDS.map((_, k) => (k === slot ? zerosOfV : 'none'))],
  });
  const sums = SECURE_SUM_KINDS.map((_, k) => (k === slot ? V : empty));
  return {
    format: PLAN_FORMAT,
    name: `${program.name}.${step.result}`,
    description: `secure_sum ${step.result} (${kind} ${param}, step ${index}) of program ${program.name}`,
    client_data: { ...spec, collection },
    schedule: {
      rounds: 1,
      target_clients: schedule.clients,
      over_selection: 1,
      min_reports: step.min_clients,
      min_clients_in_aggregate: step.min_clients,
      selection_timeout_s: secure.protocol === 'none' ? schedule.deadlineS : quarter,
      reporting_deadline_s: schedule.deadlineS,
      secure_aggregation: secure,
    },
    initialize: zerosComputation(V),
    computations: {
      prepare: { parameter: { name: 'arg', type: V }, nodes: [{ name: 'c', op: 'struct' }], result: 'c' },
      work: {
        parameter: {
          name: 'arg',
          type: {
            kind: 'struct',
            fields: [
              { name: 'data', type: D },
              { name: 'broadcast', type: empty },
            ],
          },
        },
        nodes: workNodes,
        result: 'out',
      },
      zero: emptyOf(),
      accumulate: emptyOf(pair(empty, empty)),
      merge: emptyOf(pair(empty, empty)),
      report: emptyOf(empty),
      secure_sum_bitwidth: paramOf(0),
      secure_sum_max_input: paramOf(1),
      secure_modular_sum_modulus: paramOf(2),
      update: {
        parameter: {
          name: 'arg',
          type: {
            kind: 'struct',
            fields: [
              { name: 'state', type: V },
              {
                name: 'aggregates',
                type: {
                  kind: 'struct',
                  fields: [
                    { name: 'report', type: empty },
                    { name: 'bitwidth_sum', type: sums[0]! },
                    { name: 'max_input_sum', type: sums[1]! },
                    { name: 'modular_sum', type: sums[2]! },
                  ],
                },
              },
            ],
          },
        },
        nodes: [
          { name: 'aggregates', op: 'field', args: ['arg'], attrs: { name: 'aggregates' } },
          { name: 'sum', op: 'field', args: ['aggregates'], attrs: { index: slot + 1 } },
          { name: 'none', op: 'struct' },
          { name: 'out', op: 'struct', args: ['sum', 'none'] },
        ],
        result: 'out',
      },
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

/** `() -> zeros of t`. */
function zerosComputation(t: TffType): Computation {
  const nodes: Computation['nodes'] = [];
  const result = zerosInto(t, nodes, 'z');
  return { nodes, result };
}

/** `(<S, <R, V1sum, V2sum, V3sum>> -> <R, <>>)`: the aggregate becomes the state; no output. */
function updateComputation(R: TffType): Computation {
  const empty: TffType = { kind: 'struct', fields: [] };
  return {
    parameter: {
      name: 'arg',
      type: {
        kind: 'struct',
        fields: [
          { name: 'state', type: R },
          {
            name: 'aggregates',
            type: {
              kind: 'struct',
              fields: [
                { name: 'report', type: R },
                { name: 'bitwidth_sum', type: empty },
                { name: 'max_input_sum', type: empty },
                { name: 'modular_sum', type: empty },
              ],
            },
          },
        ],
      },
    },
    nodes: [
      { name: 'aggregates', op: 'field', args: ['arg'], attrs: { name: 'aggregates' } },
      { name: 'report', op: 'field', args: ['aggregates'], attrs: { name: 'report' } },
      { name: 'none', op: 'struct' },
      { name: 'out', op: 'struct', args: ['report', 'none'] },
    ],
    result: 'out',
  };
}

function emptyStruct(): Computation {
  return { nodes: [{ name: 'e', op: 'struct' }], result: 'e' };
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
