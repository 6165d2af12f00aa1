import { Checker, toDetail } from '../compute/checker';
import { DEFAULT_LIMITS, type Limits } from '../compute/limits';
import type { Signature, TffType } from '../compute/types';
import { AppError, type ErrorDetail } from '../errors';
import { clientDataErrors } from '../plan/client-data-check';
import { checkJsonShape, checkNodeCounts, DEFAULT_JSON_SHAPE_LIMITS } from '../plan/json-shape-check';
import { secondsBoundError } from '../plan/schedule-checks';
import { checkPlan, errorCode } from '../plan/validate';
import { maskingModuli } from '../secagg/masks';
import { secureSumPlan } from './aggregation-plan';
import { schemaErrorDetails, validatorFor } from '../schema-validation';
import { secureSumSpec, type Placement, type Program, type SecureSumStep } from './program';
import { programCostErrors } from './cost-check';
import { checkSteps, ProgramProblems } from './step-check';

/** A program that passed the schema, the type checker, the placements, the privacy rule and the minimums. */
export interface CheckedProgram {
  readonly program: Program;
  /** Every value's placement, by name. */
  readonly placements: ReadonlyMap<string, Placement>;
  /** Every value's type, by name (a client value's type is that of each device's member). */
  readonly types: ReadonlyMap<string, TffType>;
  /** Every computation's signature by name, and every function's as `function <name>`. */
  readonly signatures: Readonly<Record<string, Signature>>;
  /** The computations devices run (client_call's); they are what a client program holds. */
  readonly clientComputations: ReadonlySet<string>;
  /** The indexes of the aggregate and secure_sum steps, in order. */
  readonly aggregations: readonly number[];
}

/** Fewest devices any aggregation may cover: an aggregate of one device is that device's value. */
const MIN_COHORT = 2;

/**
 * Validates a stateful program completely (docs/stateful.md, "The rules"): JSON Schema, every computation's
 * types and the interpreter limits, the steps as straight-line code over placed values, the privacy rule
 * and the minimums, and the bounds of this server's configuration. Throws one AppError listing every
 * problem, each with a JSON pointer: PROGRAM_PRIVACY_VIOLATION when any breaks the privacy rule or a
 * minimum, else PLAN_SCHEMA_INVALID, PLAN_TYPE_ERROR or PLAN_LIMIT_EXCEEDED as for a plan, and
 * PLAN_OUT_OF_BOUNDS (422) for a program that is valid but outside the server's bounds.
 */
export function checkProgram(json: unknown, limits: Limits = DEFAULT_LIMITS): CheckedProgram {
  // Bounds before ajv, which recurses into nested types (as for plans).
  checkNodeCounts(json, limits, 'program');
  checkJsonShape(json, DEFAULT_JSON_SHAPE_LIMITS, 'program');
  const validate = validatorFor('program.schema.json');
  if (!validate(json)) {
    throw new AppError(
      'PLAN_SCHEMA_INVALID',
      'the program does not match schemas/program.schema.json',
      schemaErrorDetails(validate.errors),
    );
  }
  const program = json as Program;
  const problems = new ProgramProblems();
  const checker = new Checker(program.functions ?? {}, limits);
  const signatures: Record<string, Signature> = {};
  // A Map, so that a computation called "toString" never reaches Object.prototype.
  const byName = new Map<string, Signature | undefined>();

  for (const [name, spec] of Object.entries(program.client_data)) {
    problems.details.push(...clientDataErrors(spec, `/client_data/${name}`, `client_data.${name}`));
  }
  for (const [name, comp] of Object.entries(program.computations)) {
    const pointer = `/computations/${name}`;
    try {
      byName.set(name, (signatures[name] = checker.check(comp, name, pointer)));
    } catch (e) {
      byName.set(name, undefined);
      problems.details.push(toDetail(e, pointer, name));
    }
  }
  for (const name of Object.keys(program.functions ?? {})) {
    try {
      signatures[`function ${name}`] = checker.signatureOf(name);
    } catch (e) {
      problems.details.push(toDetail(e, `/functions/${name}`, `function ${name}`));
    }
  }
  cohortErrors(program, problems);
  const facts = checkSteps(program, byName, problems);
  for (const [name, comp] of Object.entries(program.computations)) {
    const pointer = `/computations/${name}`;
    const where = facts.clients.has(name) ? 'devices' : facts.workers.has(name) ? 'aggregation workers' : '';
    if (!where && !facts.server.has(name)) {
      // Refused rather than ignored: a computation no step calls is almost always a step left out.
      problems.error(pointer, `computation "${name}" is not called by any step (remove it or call it)`);
    }
    const use = where && checker.serverOnlyUseIn(comp, name);
    if (use) problems.error(pointer, `${name} runs on ${where}, so it may not use the server-only ${use}`);
  }
  for (const [output, value] of Object.entries(program.outputs)) {
    const placement = facts.placements.get(value);
    if (!placement) problems.error(`/outputs/${output}`, `"${value}" is not defined by any step`);
    else if (placement === 'clients')
      problems.breach(
        `/outputs/${output}`,
        `"${value}" is a client value: only server values are released, and a client value reaches the server only through aggregate or secure_sum`,
      );
  }

  const bounds = boundErrors(program, limits);
  // Only a well-typed program can be costed, or have its secure sums' plans made.
  if (problems.details.length === 0) {
    bounds.push(...programCostErrors(program, facts.types, signatures, facts.clients, limits));
    for (const i of facts.aggregations) {
      const step = program.steps[i]!;
      if (step.op === 'secure_sum') {
        const found = secureSumErrors(program, i, step, facts.types.get(step.value)!, limits);
        problems.details.push(...found.invalid);
        bounds.push(...found.outOfBounds);
      }
    }
  }
  if (problems.details.length || bounds.length) {
    // A broken function is reported once even when several computations reach it.
    const all = [...problems.details, ...bounds];
    const unique = [...new Map(all.map((e) => [`${e.path}\n${e.message}`, e])).values()];
    const count = `${unique.length} problem${unique.length === 1 ? '' : 's'}`;
    if (problems.privacy)
      throw new AppError(
        'PROGRAM_PRIVACY_VIOLATION',
        `the program breaks the privacy rule (${count})`,
        unique,
      );
    if (problems.details.length)
      throw new AppError(errorCode(unique), `the program is not valid (${count})`, unique);
    throw new AppError(
      'PLAN_OUT_OF_BOUNDS',
      `the program is outside this server's bounds (${count})`,
      unique,
    );
  }
  return {
    program,
    placements: facts.placements,
    types: facts.types,
    signatures,
    clientComputations: facts.clients,
    aggregations: facts.aggregations,
  };
}

/** The cohort's own rules: at least two devices, and a target no lower than the minimum. */
function cohortErrors({ cohort }: Program, problems: ProgramProblems): void {
  if (cohort.min_clients < MIN_COHORT) {
    problems.breach(
      '/cohort/min_clients',
      `min_clients ${cohort.min_clients} is less than ${MIN_COHORT}: an aggregate of one device is that device's value`,
    );
  }
  if (cohort.target_clients < cohort.min_clients) {
    problems.error(
      '/cohort/target_clients',
      `target_clients ${cohort.target_clients} is less than min_clients ${cohort.min_clients}`,
    );
  }
}

/**
 * Values outside the bounds this server is configured with (`SCHEDULE_*`), as a plan's schedule is
 * bounded: the cohort's size and every timeout and deadline.
 */
function boundErrors(program: Program, limits: Limits): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  const { cohort } = program;
  const seconds: [string, number | undefined][] = [
    ['/cohort/join_timeout_s', cohort.join_timeout_s],
    ['/cohort/step_timeout_s', cohort.step_timeout_s],
    ...program.steps.map((s, i): [string, number | undefined] => [
      `/steps/${i}/deadline_s`,
      s.op === 'aggregate' || s.op === 'secure_sum' ? s.deadline_s : undefined,
    ]),
  ];
  for (const [path, v] of seconds) {
    const why =
      v === undefined ? null : secondsBoundError(`${path.slice(path.lastIndexOf('/') + 1)} ${v}`, v, limits);
    if (why) out.push({ path, message: why });
  }
  if (cohort.target_clients > limits.scheduleMaxTargetClients) {
    out.push({
      path: '/cohort/target_clients',
      message: `target_clients ${cohort.target_clients} is more than the maximum of ${limits.scheduleMaxTargetClients} (SCHEDULE_MAX_TARGET_CLIENTS)`,
    });
  }
  return out;
}

/**
 * What the plan of a secure_sum step would be refused for, found now rather than when the step starts: its
 * SecAgg settings (a graph for the cohort's target, timeouts that leave time to upload, the server's bounds)
 * and its masking moduli. Each problem points into the step; those of the server's bounds only are apart.
 */
function secureSumErrors(
  program: Program,
  index: number,
  step: SecureSumStep,
  V: TffType,
  limits: Limits,
): { invalid: ErrorDetail[]; outOfBounds: ErrorDetail[] } {
  const at = `/steps/${index}`;
  const deadlineS = step.deadline_s ?? program.cohort.step_timeout_s;
  const plan = secureSumPlan(program, index, V, { clients: program.cohort.target_clients, deadlineS });
  const invalid: ErrorDetail[] = [];
  const outOfBounds: ErrorDetail[] = [];
  try {
    checkPlan(plan, limits);
  } catch (e) {
    if (!(e instanceof AppError)) throw e;
    const out = e.code === 'PLAN_OUT_OF_BOUNDS' ? outOfBounds : invalid;
    for (const d of e.details ?? [{ path: '', message: e.message }]) {
      const secure = /^\/schedule\/secure_aggregation(\/.*)?$/.exec(d.path);
      const timing = /^\/schedule\/(selection_timeout_s|reporting_deadline_s)$/.test(d.path);
      const path = secure ? `${at}/secure_aggregation${secure[1] ?? ''}` : timing ? `${at}/deadline_s` : at;
      out.push({ path, message: `the secure sum's plan (deadline_s ${deadlineS}): ${d.path} ${d.message}` });
    }
  }
  const { kind, parameter } = secureSumSpec(step);
  const secure = plan.schedule.secure_aggregation;
  if (secure && secure.protocol !== 'none') {
    // A device answers its contribution after its upload, which waits for selection and the key exchange
    // when a device of the cohort is slow or gone: no longer than the cohort's step timeout, or every
    // device still waiting would be timed out with it.
    const waits = (plan.schedule.selection_timeout_s ?? 0) + (secure.sharing_timeout_s ?? 0);
    if (waits >= program.cohort.step_timeout_s) {
      invalid.push({
        path: `${at}/deadline_s`,
        message: `a device may wait ${waits} s for the key exchange (selection ${plan.schedule.selection_timeout_s} s and sharing ${secure.sharing_timeout_s} s) before it can upload, not less than the cohort's step_timeout_s (${program.cohort.step_timeout_s}); lower deadline_s or secure_aggregation.sharing_timeout_s`,
      });
    }
    const params = { bitwidth: [], max_input: [], modulus: [], [kind]: [parameter] };
    try {
      maskingModuli(params, program.cohort.target_clients);
    } catch (e) {
      outOfBounds.push({ path: `${at}/${kind}`, message: `secure aggregation: ${(e as Error).message}` });
    }
  }
  return { invalid, outOfBounds };
}
