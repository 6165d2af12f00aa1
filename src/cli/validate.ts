import { Command, type CommanderError } from 'commander';
import { initBackend } from '../compute/backend';
import { formatType, type Signature } from '../compute/types';
import { loadConfig, type Config } from '../config';
import { AppError, type ErrorDetail } from '../errors';
import type { PlanEvaluator } from '../isolate/contract';
import { LocalEvaluator } from '../isolate/local-evaluator';
import { admitPlan } from '../rounds/plan-admission';
import { admitProgram } from '../stateful/admission';
import { PROGRAM_FORMAT, type Placement } from '../stateful/program';
import { USAGE_EXIT_CODE } from './plans';
import { readTextFile } from './read-file';

/** What `roundhouse validate` reports of a plan the server would accept: what its summary would say. */
export interface ValidPlanSummary {
  readonly name: string;
  readonly population: string;
  readonly rounds: number;
  /** Every computation's and function's type signature, `(parameter -> result)`, in the order checked. */
  readonly signatures: Readonly<Record<string, string>>;
}

/** The outcome of validating one plan document: its summary, or the AppError POST /v1/plans answers. */
export type PlanValidation =
  | { readonly ok: true; readonly summary: ValidPlanSummary }
  | { readonly ok: false; readonly error: AppError };

/** What validation needs of the server's configuration, and where plan code runs. */
export interface ValidateDeps {
  readonly config: Pick<Config, 'limits' | 'maxPlanBytes'>;
  readonly evaluator: PlanEvaluator;
}

/**
 * Runs the checks of POST /v1/plans on a parsed plan, without storing it: the body limit the API applies to
 * the JSON that `roundhouse submit` sends, then `admitPlan`, the engine's own submit-time checks (schema,
 * types, form, bounds, dp budget, round 1 evaluated). Other errors (a bug, not a bad plan) are thrown.
 */
export async function validatePlan(json: unknown, deps: ValidateDeps): Promise<PlanValidation> {
  const tooLarge = bodyLimitError(json, deps.config.maxPlanBytes);
  if (tooLarge) return { ok: false, error: tooLarge };
  try {
    const { checked, schedule } = await admitPlan(
      json,
      { limits: deps.config.limits, evaluator: deps.evaluator },
      'validate',
    );
    const { plan } = checked;
    const signatures = Object.fromEntries(
      Object.entries(checked.signatures).map(([name, s]) => [name, formatSignature(s)]),
    );
    return {
      ok: true,
      summary: {
        name: plan.name,
        population: plan.population ?? plan.client_data.collection,
        rounds: schedule.rounds,
        signatures,
      },
    };
  } catch (e) {
    if (e instanceof AppError) return { ok: false, error: e };
    throw e;
  }
}

/** What `roundhouse validate` reports of a valid stateful program (docs/stateful.md). */
export interface ValidProgramSummary {
  readonly name: string;
  readonly population: string;
  readonly steps: number;
  /** Every value the steps define, in order: where it lives and its type (a client value's, per device). */
  readonly values: Readonly<Record<string, { readonly placement: Placement; readonly type: string }>>;
  /** Every computation's and function's type signature. */
  readonly signatures: Readonly<Record<string, string>>;
}

/** The outcome of validating one program document. */
export type ProgramValidation =
  | { readonly ok: true; readonly summary: ValidProgramSummary }
  | { readonly ok: false; readonly error: AppError };

/** Whether a parsed document says it is a stateful program rather than a plan. */
export function isProgramDocument(json: unknown): boolean {
  return (
    json !== null && typeof json === 'object' && (json as { format?: unknown }).format === PROGRAM_FORMAT
  );
}

/**
 * Runs the checks of `POST /v1/programs` (`admitProgram`) on a parsed program document under the same body
 * limit and server limits as a plan. Nothing is evaluated (nor is it at submit).
 */
export function validateProgram(
  json: unknown,
  config: Pick<Config, 'limits' | 'maxPlanBytes'>,
): ProgramValidation {
  const tooLarge = bodyLimitError(json, config.maxPlanBytes);
  if (tooLarge) return { ok: false, error: tooLarge };
  try {
    const checked = admitProgram(json, config.limits);
    const values = Object.fromEntries(
      [...checked.placements].map(([name, placement]) => [
        name,
        { placement, type: formatType(checked.types.get(name)!) },
      ]),
    );
    const signatures = Object.fromEntries(
      Object.entries(checked.signatures).map(([name, s]) => [name, formatSignature(s)]),
    );
    const { program } = checked;
    return {
      ok: true,
      summary: {
        name: program.name,
        population: program.population,
        steps: program.steps.length,
        values,
        signatures,
      },
    };
  } catch (e) {
    if (e instanceof AppError) return { ok: false, error: e };
    throw e;
  }
}

/** The answer of src/api/middleware/json-body.ts to a body over MAX_PLAN_BYTES (the route's tooLarge code). */
function bodyLimitError(json: unknown, limit: number): AppError | undefined {
  if (Buffer.byteLength(JSON.stringify(json)) <= limit) return undefined;
  return new AppError('PLAN_LIMIT_EXCEEDED', `the body is larger than ${limit} bytes`, [
    { path: '', message: `limit ${limit} bytes` },
  ]);
}

/** A signature as TFF prints a functional type: `(<a=int32> -> int32)`, `( -> <>)` without a parameter. */
export function formatSignature(s: Signature): string {
  return `(${s.parameter ? formatType(s.parameter) : ''} -> ${formatType(s.result)})`;
}

/** One line per problem, as `roundhouse submit` prints the server's answer. */
export function formatProblems(file: string, error: AppError): string {
  const body = error.toJSON().error;
  const lines = body.details.map((d: ErrorDetail) => `\n  ${d.path || '/'}: ${d.message}`);
  return `${file}: ${error.status} ${body.code}: ${body.message}${lines.join('')}\n`;
}

/** Where `validate` writes and how it ends; tests replace them. */
export interface ValidateCommandIo {
  readonly out?: (text: string) => void;
  readonly err?: (text: string) => void;
  readonly exit?: (code: number) => never;
  /** The server configuration to validate against (default: `loadConfig` of this process's environment). */
  readonly config?: () => Pick<Config, 'limits' | 'maxPlanBytes'>;
}

/**
 * `roundhouse validate plan.json [--json]`: the submit-time checks of POST /v1/plans on a plan file, against
 * the limits this environment gives a server (LIMIT_*, SCHEDULE_*, MAX_PLAN_BYTES). Exit 0 and a summary
 * when the server would accept the plan; 1 with the API's code and every problem (JSON pointer and
 * message), or when the file cannot be read or is not JSON; 2 on a usage mistake. A document whose
 * `format` is `roundhouse.program/v1` is checked by `admitProgram` (the checks `POST /v1/programs` runs) instead, with the same conventions.
 */
export function validateCommand(io: ValidateCommandIo = {}): Command {
  const out = io.out ?? ((t: string) => void process.stdout.write(t));
  const err = io.err ?? ((t: string) => void process.stderr.write(t));
  const exit = io.exit ?? ((code: number): never => process.exit(code));
  return (
    new Command('validate')
      .description(
        'check a plan file as POST /v1/plans would, without a server; a stateful program (format roundhouse.program/v1) is checked against its rules',
      )
      .argument(
        '<plan>',
        'plan or program JSON file (- reads stdin), for example from `roundhouse plans build`',
      )
      .option(
        '--json',
        'print the API-shaped answer: {error: {code, message, details}} or the plan or program summary',
      )
      .configureOutput({ writeOut: out, writeErr: err })
      // Commander ends a usage mistake (missing argument, unknown option) with 1; this CLI's convention is 2.
      .exitOverride((e: CommanderError) => exit(e.exitCode === 0 ? 0 : USAGE_EXIT_CODE))
      .action(async (file: string, opts: { json?: boolean }) => {
        const config = (io.config ?? (() => loadConfig()))();
        const json = readPlanFile(file);
        if (json instanceof AppError) return fail(file, json, opts.json);
        if (isProgramDocument(json)) return programAction(file, validateProgram(json, config), opts.json);
        await initBackend();
        const evaluator = new LocalEvaluator(config.limits);
        try {
          const result = await validatePlan(json, { config, evaluator });
          if (!result.ok) return fail(file, result.error, opts.json);
          const s = result.summary;
          if (opts.json) {
            out(`${JSON.stringify(s, null, 2)}\n`);
            return;
          }
          out(`${file}: valid plan "${s.name}" (population ${s.population}, ${s.rounds} rounds)\n`);
          const width = Math.max(...Object.keys(s.signatures).map((k) => k.length));
          for (const [name, sig] of Object.entries(s.signatures)) out(`  ${name.padEnd(width)}  ${sig}\n`);
        } finally {
          await evaluator.close();
        }
      })
  );

  function programAction(file: string, result: ProgramValidation, asJson: boolean | undefined): void {
    if (!result.ok) return fail(file, result.error, asJson);
    const s = result.summary;
    if (asJson) return out(`${JSON.stringify(s, null, 2)}\n`);
    out(`${file}: valid program "${s.name}" (population ${s.population}, ${s.steps} steps)\n`);
    const width = Math.max(...Object.keys(s.values).map((k) => k.length));
    for (const [name, v] of Object.entries(s.values))
      out(`  ${name.padEnd(width)}  ${v.placement.padEnd(7)}  ${v.type}\n`);
  }

  function fail(file: string, error: AppError, asJson: boolean | undefined): never {
    if (asJson) out(`${JSON.stringify(error.toJSON(), null, 2)}\n`);
    else err(formatProblems(file, error));
    return exit(1);
  }
}

/**
 * The plan document of `file`, or the API's answer to a body that is not JSON (with the file named). A file
 * that cannot be read throws: no request would have been made.
 */
function readPlanFile(file: string): unknown {
  const text = readTextFile(file, 'plan');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    return new AppError('REQUEST_INVALID', `${file} is not valid JSON`, [
      { path: '', message: e instanceof Error ? e.message : String(e) },
    ]);
  }
}
