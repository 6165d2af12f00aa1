import { Command, type CommanderError } from 'commander';
import { initBackend } from '../compute/backend';
import { formatType, type Signature } from '../compute/types';
import { loadConfig, type Config } from '../config';
import { AppError, type ErrorDetail } from '../errors';
import type { PlanEvaluator } from '../isolate/contract';
import { LocalEvaluator } from '../isolate/local-evaluator';
import { admitPlan } from '../rounds/plan-admission';
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
  const limit = deps.config.maxPlanBytes;
  if (Buffer.byteLength(JSON.stringify(json)) > limit) {
    // The text of src/api/middleware/json-body.ts for a body over MAX_PLAN_BYTES (the route's tooLarge code).
    const error = new AppError('PLAN_LIMIT_EXCEEDED', `the body is larger than ${limit} bytes`, [
      { path: '', message: `limit ${limit} bytes` },
    ]);
    return { ok: false, error };
  }
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
 * message), or when the file cannot be read or is not JSON; 2 on a usage mistake.
 */
export function validateCommand(io: ValidateCommandIo = {}): Command {
  const out = io.out ?? ((t: string) => void process.stdout.write(t));
  const err = io.err ?? ((t: string) => void process.stderr.write(t));
  const exit = io.exit ?? ((code: number): never => process.exit(code));
  return (
    new Command('validate')
      .description('check a plan file as POST /v1/plans would, without a server')
      .argument('<plan>', 'plan JSON file (- reads stdin), for example from `roundhouse plans build`')
      .option('--json', 'print the API-shaped answer: {error: {code, message, details}} or the plan summary')
      .configureOutput({ writeOut: out, writeErr: err })
      // Commander ends a usage mistake (missing argument, unknown option) with 1; this CLI's convention is 2.
      .exitOverride((e: CommanderError) => exit(e.exitCode === 0 ? 0 : USAGE_EXIT_CODE))
      .action(async (file: string, opts: { json?: boolean }) => {
        const config = (io.config ?? (() => loadConfig()))();
        const json = readPlanFile(file);
        if (json instanceof AppError) return fail(file, json, opts.json);
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
