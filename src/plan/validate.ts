import { Checker, toDetail } from '../compute/checker';
import { DEFAULT_LIMITS, type Limits } from '../compute/limits';
import {
  assignabilityError,
  EMPTY_STRUCT,
  formatType,
  sequenceType,
  structType,
  type Signature,
  type TffType,
} from '../compute/types';
import { base64ToBytes, readTypedBundle } from '../codec';
import { AppError, type ErrorDetail } from '../errors';
import type { Computation } from '../generated/computation';
import type { MapReduceForm, Plan } from '../generated/plan';
import { schemaErrorDetails, validatorFor } from '../schema-validation';
import { clientDataErrors } from './client-data-check';
import { dpErrors } from './dp-check';
import { costErrors } from './cost-check';
import { aggregationTypes, formFitters, safeLeaves } from './form-fit';
import type { FormTypes } from './form-types';
import { checkJsonShape, checkNodeCounts } from './json-shape-check';
import { scheduleBoundErrors, scheduleErrors } from './schedule-checks';
import { secureAggregationErrors } from './secure-aggregation-check';
import { secureSumParamErrors } from './secure-sum-check';
import { updateBoundsErrors } from './update-bounds-check';

export type { FormTypes } from './form-types';

/** A plan that passed the schema, the type checker and the form's cross-computation constraints. */
export interface CheckedPlan {
  readonly plan: Plan;
  readonly types: FormTypes;
  readonly signatures: Readonly<Record<string, Signature>>;
}

/** The form's computations in the order a round uses them, which is also the order errors are reported in. */
export const FORM_SLOTS = [
  'prepare',
  'work',
  'zero',
  'accumulate',
  'merge',
  'report',
  'secure_sum_bitwidth',
  'secure_sum_max_input',
  'secure_modular_sum_modulus',
  'update',
] as const satisfies readonly (keyof MapReduceForm)[];

/** Computations that clients or aggregation workers run; they may not use server-only ops. */
const CLIENT_OR_WORKER_SLOTS = ['work', 'zero', 'accumulate', 'merge'] as const;

/**
 * Validates a plan document completely: JSON Schema, every computation's types, the limits, and the
 * constraints that tie the form together (those TFF's `forms.py` enforces). Throws one AppError listing
 * every problem found, each with a JSON pointer and a message naming the computation and node.
 */
export function checkPlan(json: unknown, limits: Limits = DEFAULT_LIMITS): CheckedPlan {
  // Bounds before ajv, which recurses into nested types and takes seconds over a million nodes.
  checkNodeCounts(json, limits);
  checkJsonShape(json);
  const validate = validatorFor('plan.schema.json');
  if (!validate(json)) {
    throw new AppError(
      'PLAN_SCHEMA_INVALID',
      'the plan does not match schemas/plan.schema.json',
      schemaErrorDetails(validate.errors),
    );
  }
  const plan = json as unknown as Plan;
  const errors: ErrorDetail[] = [];
  const checker = new Checker(plan.functions ?? {}, limits);
  const signatures: Record<string, Signature> = {};

  const sig = (comp: Computation | undefined, label: string, pointer: string): Signature | undefined => {
    if (!comp) return undefined;
    try {
      const s = checker.check(comp, label, pointer);
      signatures[label] = s;
      return s;
    } catch (e) {
      errors.push(toDetail(e, pointer, label));
      return undefined;
    }
  };

  if (!!plan.initialize === !!plan.initial_state) {
    errors.push({ path: '', message: 'the plan needs exactly one of "initialize" and "initial_state"' });
  }
  errors.push(...clientDataErrors(plan.client_data));
  const init = sig(plan.initialize, 'initialize', '/initialize');
  const form: Partial<Record<(typeof FORM_SLOTS)[number], Signature>> = {};
  for (const slot of FORM_SLOTS) form[slot] = sig(plan.computations[slot], slot, `/computations/${slot}`);
  const evaluate = sig(plan.evaluate, 'evaluate', '/evaluate');
  for (const name of Object.keys(plan.functions ?? {})) {
    try {
      signatures[`function ${name}`] = checker.signatureOf(name);
    } catch (e) {
      errors.push(toDetail(e, `/functions/${name}`, `function ${name}`));
    }
  }
  for (const slot of CLIENT_OR_WORKER_SLOTS) {
    const use = checker.serverOnlyUseIn(plan.computations[slot], slot);
    if (use)
      errors.push({
        path: `/computations/${slot}`,
        message: `${slot} runs on clients or workers, so it may not use the server-only ${use}`,
      });
  }
  errors.push(...scheduleErrors(plan));

  const types = errors.length === 0 ? formTypes(plan, { init, ...form, evaluate }, errors) : undefined;
  if (types) errors.push(...secureSumParamErrors(plan, types.V, limits.maxCallDepth));
  if (types) errors.push(...secureAggregationErrors(plan, types.V));
  if (types) errors.push(...updateBoundsErrors(plan.update_bounds, types.U));
  if (types) errors.push(...dpErrors(plan, types));
  // Bounds of this server's configuration (schedule, estimated cost; only a well-typed plan can be costed):
  // a plan outside them alone is well-formed but refused, 422 PLAN_OUT_OF_BOUNDS.
  const bounds = [
    ...scheduleBoundErrors(plan, limits),
    ...(types && errors.length === 0 ? costErrors(plan, types, limits) : []),
  ];
  if (errors.length || !types || bounds.length) {
    // A broken function is reported once even when several computations reach it.
    const unique = [...new Map([...errors, ...bounds].map((e) => [`${e.path}\n${e.message}`, e])).values()];
    const invalid = errors.length > 0 || !types;
    const problems = `${unique.length} problem${unique.length === 1 ? '' : 's'}`;
    throw new AppError(
      invalid ? errorCode(unique) : 'PLAN_OUT_OF_BOUNDS',
      invalid
        ? `the plan is not a valid MapReduce form (${problems})`
        : `the plan is outside this server's bounds (${problems})`,
      unique,
    );
  }
  return { plan, types, signatures };
}

/** The code of a document's problems: PLAN_LIMIT_EXCEEDED when every one is a limit, else PLAN_TYPE_ERROR. */
export function errorCode(errors: readonly ErrorDetail[]): 'PLAN_LIMIT_EXCEEDED' | 'PLAN_TYPE_ERROR' {
  return errors.length > 0 && errors.every((e) => /limit/.test(e.message))
    ? 'PLAN_LIMIT_EXCEEDED'
    : 'PLAN_TYPE_ERROR';
}

type Sigs = { init?: Signature; evaluate?: Signature } & Partial<
  Record<(typeof FORM_SLOTS)[number], Signature>
>;

/** Checks that the form's computations chain, and derives S, C, D, U, V, A, R, X. */
function formTypes(plan: Plan, sigs: Sigs, errors: ErrorDetail[]): FormTypes | undefined {
  const at = (slot: string) =>
    slot === 'initialize' || slot === 'evaluate' ? `/${slot}` : `/computations/${slot}`;
  const fail = (slot: string, message: string) => {
    errors.push({ path: at(slot), message: `${slot}: ${message}` });
  };
  const { fits, noParameter, pair, staticShapes } = formFitters(fail);

  const { prepare, work, zero, accumulate, merge, report, update } = sigs;
  if (!prepare || !work || !zero || !accumulate || !merge || !report || !update) return undefined;

  const S = sigs.init ? sigs.init.result : prepare.parameter;
  if (sigs.init) noParameter('initialize', sigs.init);
  if (!S) {
    fail('prepare', 'must take the server state as its parameter');
    return undefined;
  }
  staticShapes(sigs.init ? 'initialize' : 'prepare', 'the server state', S);
  if (plan.initial_state) {
    try {
      readTypedBundle(base64ToBytes(plan.initial_state.data), S);
    } catch (e) {
      const why =
        e instanceof AppError
          ? e.details.map((d) => `${d.path}: ${d.message}`).join('; ') || e.message
          : String(e);
      errors.push({
        path: '/initial_state/data',
        message: `initial_state is not a bundle of the server state ${formatType(S)}: ${why}`,
      });
    }
  }
  fits('prepare', 'the parameter', prepare.parameter, S);
  const C = prepare.result;
  staticShapes('prepare', 'the broadcast', C);

  const D = sequenceType(plan.client_data.element);
  const workIn = pair('work', work, 2, 'D, C');
  if (workIn) {
    fits('work', 'the first parameter field (client data)', workIn[0], D);
    fits('work', 'the second parameter field (broadcast)', workIn[1], C);
  }
  const out = work.result;
  if (out.kind !== 'struct' || out.fields.length !== 4) {
    fail('work', `must return a 4-field struct <U, V1, V2, V3>, returns ${formatType(out)}`);
    return undefined;
  }
  const [U, V1, V2, V3] = out.fields.map((f) => f.type) as [TffType, TffType, TffType, TffType];
  staticShapes('work', 'the update U', U);
  const secure = [
    ['secure_sum_bitwidth', V1, 'V1'],
    ['secure_sum_max_input', V2, 'V2'],
    ['secure_modular_sum_modulus', V3, 'V3'],
  ] as const;
  for (const [slot, V, name] of secure) {
    staticShapes('work', `the secure-sum update ${name}`, V);
    const bad = safeLeaves(V)?.find((l) => l.type.dtype !== 'int32');
    if (bad)
      fail(
        'work',
        `secure-sum update ${name} must hold int32 tensors; ${bad.path.join('.') || name} is ${bad.type.dtype}`,
      );
    const s = sigs[slot];
    if (s) {
      noParameter(slot, s);
      const why = secureParamsError(V, s.result);
      if (why) fail(slot, why);
    }
  }

  const { A, R } = aggregationTypes({ zero, accumulate, merge, report }, U, fail);

  const updIn = pair('update', update, 2, 'S, <R, V1sum, V2sum, V3sum>');
  if (updIn) {
    fits('update', 'the first parameter field (server state)', updIn[0], S);
    fits(
      'update',
      'the second parameter field (aggregates)',
      updIn[1],
      structType([
        [undefined, R],
        [undefined, V1],
        [undefined, V2],
        [undefined, V3],
      ]),
    );
  }
  const res = update.result;
  if (res.kind !== 'struct' || res.fields.length !== 2) {
    fail('update', `must return a 2-field struct <S, X>, returns ${formatType(res)}`);
    return undefined;
  }
  const [S2, X] = [res.fields[0]!.type, res.fields[1]!.type];
  fits('update', "the server state type (its result must be the next round's state)", S, S2);
  fits('prepare', "the parameter (update's new state)", prepare.parameter, S2);
  staticShapes('update', 'the server output X', X);

  if (sigs.evaluate) {
    const evIn = pair('evaluate', sigs.evaluate, 2, 'S, D');
    if (evIn) {
      fits('evaluate', 'the first parameter field (server state)', evIn[0], S);
      fits('evaluate', 'the second parameter field (data)', evIn[1], D);
    }
  }
  return { S, C, D, U, V: [V1, V2, V3], A, R, X };
}

/**
 * The secure-sum parameters are one int32 scalar for every tensor of V, or a struct shaped like V with an
 * int32 scalar per tensor; an empty V takes an empty struct.
 */
function secureParamsError(V: TffType, params: TffType): string | null {
  const scalar = (t: TffType) => t.kind === 'tensor' && t.dtype === 'int32' && t.shape.length === 0;
  if (scalar(params)) return null;
  const vLeaves = safeLeaves(V);
  const pLeaves = safeLeaves(params);
  const want = vLeaves ? structuredLike(V) : undefined;
  if (
    !vLeaves ||
    !pLeaves ||
    vLeaves.length !== pLeaves.length ||
    !pLeaves.every((l) => scalar(l.type)) ||
    (want && assignabilityError(want, params))
  ) {
    const shape = want ? formatType(want) : formatType(EMPTY_STRUCT);
    return `must return one int32 scalar or ${shape} (an int32 scalar per tensor of the secure-sum update), returns ${formatType(params)}`;
  }
  return null;
}

function structuredLike(t: TffType): TffType {
  if (t.kind === 'struct')
    return { kind: 'struct', fields: t.fields.map((f) => ({ ...f, type: structuredLike(f.type) })) };
  return { kind: 'tensor', dtype: 'int32', shape: [] };
}
