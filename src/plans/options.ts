import { AppError } from '../errors';
import type { Plan, Schedule } from '../generated/plan';

/**
 * One option of a library plan, declared as data so that the CLI can list it with its default and parse
 * it, and programmatic callers get the same validation.
 */
export interface OptionSpec<T = unknown> {
  /** What the option controls, one line. */
  readonly description: string;
  /** The value used when the option is not given; undefined means "not set" (the plan derives it). */
  readonly default: T;
  /** Shown by `--help` instead of the formatted default, e.g. `target clients`. */
  readonly defaultText?: string;
  /** A placeholder for the value in `--help`, e.g. `<n>` or `<list>`. */
  readonly placeholder: string;
  /** Parses command-line text; throws an Error whose message says what was expected. */
  readonly parse: (text: string) => T;
  /** Why a value is not acceptable, or null. */
  readonly check: (value: T) => string | null;
  /** Formats a value back to command-line text (for `--help` defaults). */
  readonly format: (value: T) => string;
}

/** The declared options of a plan whose options object has type T, keyed by property name. */
export type OptionSpecs<T> = { readonly [K in keyof T]-?: OptionSpec<T[K]> };

/** An option with its property name and its command-line flag (kebab-case). */
export type NamedOption = OptionSpec & { readonly key: string; readonly flag: string };

/** A plan of the library: what the CLI lists, documents and builds. */
export interface LibraryPlan {
  readonly description: string;
  readonly options: readonly NamedOption[];
  /** Builds the plan; missing options take their defaults, bad ones throw AppError BAD_REQUEST. */
  build(options?: Readonly<Record<string, unknown>>): Plan;
}

/** The command-line flag of an option property: `clientLr` becomes `client-lr`. */
export function flagOf(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Fills defaults into a partial options object and checks every value; throws AppError on a bad one. */
export function resolveOptions<T extends object>(specs: OptionSpecs<T>, given: Partial<T> = {}): T {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs) as [string, OptionSpec][]) {
    const value = (given as Record<string, unknown>)[key];
    const v = value === undefined ? spec.default : value;
    if (v !== undefined) {
      const why = spec.check(v);
      if (why) throw new AppError('BAD_REQUEST', `option --${flagOf(key)}: ${why}`);
    }
    out[key] = v;
  }
  const unknown = Object.keys(given).filter((k) => !(k in specs));
  if (unknown.length)
    throw new AppError('BAD_REQUEST', `unknown option ${unknown.map((k) => `--${flagOf(k)}`).join(', ')}`);
  return out as T;
}

/** Registers a plan builder with its declared options for the library. */
export function definePlan<T extends object>(
  description: string,
  specs: OptionSpecs<T>,
  build: (options: T) => Plan,
): LibraryPlan {
  const options = (Object.entries(specs) as [string, OptionSpec][]).map(([key, spec]) => ({
    ...spec,
    key,
    flag: flagOf(key),
  }));
  return {
    description,
    options,
    build: (given = {}) => build(resolveOptions(specs, given as Partial<T>)),
  };
}

function numberText(text: string, what: string): number {
  const t = text.trim();
  if (t === '' || !Number.isFinite(Number(t))) throw new Error(`"${text}" is not ${what}`);
  return Number(t);
}

function rangeCheck(
  v: number,
  min: number | undefined,
  max: number | undefined,
  integer: boolean,
): string | null {
  if (typeof v !== 'number' || !Number.isFinite(v)) return `${String(v)} is not a number`;
  if (integer && !Number.isInteger(v)) return `${v} is not an integer`;
  if (min !== undefined && v < min) return `${v} is less than ${min}`;
  if (max !== undefined && v > max) return `${v} is more than ${max}`;
  return null;
}

/** An integer option within [min, max]. */
export function intOption(
  description: string,
  def: number,
  range: { min?: number; max?: number } = {},
): OptionSpec<number> {
  return numberSpec(description, def, range, true);
}

/** The range of a number option; `exclusiveMin` and `exclusiveMax` exclude the ends themselves. */
export interface NumberRange {
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
}

/** A number option within [min, max]. */
export function numberOption(description: string, def: number, range: NumberRange = {}): OptionSpec<number> {
  const base = numberSpec(description, def, range, false);
  if (!range.exclusiveMin && !range.exclusiveMax) return base;
  const check = (v: number) =>
    base.check(v) ??
    (range.exclusiveMin && v === range.min
      ? `${v} must be more than ${range.min}`
      : range.exclusiveMax && v === range.max
        ? `${v} must be less than ${range.max}`
        : null);
  return { ...base, check, parse: (t) => checked(base.parse(t), check) };
}

/** An optional number option with no default; the plan derives the value, or does without, when absent. */
export function optionalNumberOption(
  description: string,
  defaultText: string,
  range: NumberRange = {},
): OptionSpec<number | undefined> {
  return optional(numberOption(description, 0, range), defaultText);
}

/** An optional integer option with no default; the plan derives the value when it is absent. */
export function optionalIntOption(
  description: string,
  defaultText: string,
  range: { min?: number; max?: number } = {},
): OptionSpec<number | undefined> {
  return optional(numberSpec(description, 0, range, true), defaultText);
}

/** A number option made optional: unset it is undefined, shown as `defaultText`. */
function optional(spec: OptionSpec<number>, defaultText: string): OptionSpec<number | undefined> {
  return {
    ...spec,
    default: undefined,
    defaultText,
    check: (v) => (v === undefined ? null : spec.check(v)),
    format: (v) => (v === undefined ? defaultText : String(v)),
  };
}

function numberSpec(
  description: string,
  def: number,
  range: { min?: number; max?: number },
  integer: boolean,
): OptionSpec<number> {
  const check = (v: number) => rangeCheck(v, range.min, range.max, integer);
  return {
    description,
    default: def,
    placeholder: integer ? '<n>' : '<x>',
    parse: (t) => checked(numberText(t, integer ? 'an integer' : 'a number'), check),
    check,
    format: String,
  };
}

/** A comma-separated list of integers, each within [min, max], with at least `minLength` entries. */
export function intListOption(
  description: string,
  def: readonly number[],
  range: { min?: number; max?: number; minLength?: number } = {},
): OptionSpec<readonly number[]> {
  const check = (v: readonly number[]) => {
    if (!Array.isArray(v)) return 'expected a list of integers';
    if (v.length < (range.minLength ?? 1))
      return `expected at least ${range.minLength ?? 1} entries, got ${v.length}`;
    for (const x of v) {
      const why = rangeCheck(x, range.min, range.max, true);
      if (why) return why;
    }
    return null;
  };
  return {
    description,
    default: def,
    placeholder: '<list>',
    parse: (t) =>
      checked(
        t.split(',').map((x) => numberText(x, 'an integer')),
        check,
      ),
    check,
    format: (v) => v.join(','),
  };
}

/** One of a fixed set of strings. */
export function choiceOption<C extends string>(
  description: string,
  def: C,
  choices: readonly C[],
): OptionSpec<C> {
  const check = (v: C) => (choices.includes(v) ? null : `"${String(v)}" is not one of ${choices.join(', ')}`);
  return {
    description: `${description} (${choices.join(' | ')})`,
    default: def,
    placeholder: '<name>',
    parse: (t) => checked(t.trim() as C, check),
    check,
    format: String,
  };
}

/**
 * One of a fixed set of strings with no default: the plan derives the value from other options when it is
 * absent (`defaultText` says how), and can tell a value the caller chose from one it derived.
 */
export function optionalChoiceOption<C extends string>(
  description: string,
  defaultText: string,
  choices: readonly C[],
): OptionSpec<C | undefined> {
  const spec = choiceOption(description, choices[0]!, choices);
  return {
    ...spec,
    default: undefined,
    defaultText,
    check: (v) => (v === undefined ? null : spec.check(v)),
    format: (v) => v ?? defaultText,
  };
}

/** A boolean option: `true`/`false`/`yes`/`no`/`1`/`0` on the command line. */
export function boolOption(description: string, def: boolean): OptionSpec<boolean> {
  return {
    description,
    default: def,
    placeholder: '[bool]',
    parse: (t) => {
      const s = t.trim().toLowerCase();
      if (['true', 'yes', '1', 'on'].includes(s)) return true;
      if (['false', 'no', '0', 'off'].includes(s)) return false;
      throw new Error(`"${t}" is not true or false`);
    },
    check: (v) => (typeof v === 'boolean' ? null : `${String(v)} is not a boolean`),
    format: String,
  };
}

/** A name such as a data collection (the plan schema's name pattern). */
export function nameOption(description: string, def: string): OptionSpec<string> {
  const check = (v: string) =>
    typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(v) && v.length <= 128
      ? null
      : `"${String(v)}" is not a valid name (letters, digits, _ . -)`;
  return {
    description,
    default: def,
    placeholder: '<name>',
    parse: (t) => checked(t.trim(), check),
    check,
    format: String,
  };
}

function checked<T>(v: T, check: (v: T) => string | null): T {
  const why = check(v);
  if (why) throw new Error(why);
  return v;
}

/** The round schedule options every library plan takes. */
export interface ScheduleOptions {
  rounds: number;
  targetClients: number;
  minReports: number | undefined;
  minClientsInAggregate: number | undefined;
  overSelection: number;
  selectionTimeout: number;
  reportingDeadline: number;
}

/** The schedule option specs, with a plan's own defaults for rounds and clients per round. */
export function scheduleOptions(defaults: {
  rounds: number;
  targetClients: number;
}): OptionSpecs<ScheduleOptions> {
  return {
    rounds: intOption('number of rounds', defaults.rounds, { min: 1, max: 1_000_000 }),
    targetClients: intOption('clients per round', defaults.targetClients, { min: 1, max: 1_000_000 }),
    minReports: optionalIntOption('reports needed by the deadline for a round to count', 'target clients', {
      min: 1,
    }),
    minClientsInAggregate: optionalIntOption('fewest clients in any released aggregate', 'min reports', {
      min: 1,
    }),
    overSelection: numberOption('over-selection factor (clients selected / target)', 1.3, {
      min: 1,
      max: 10,
    }),
    selectionTimeout: numberOption('selection timeout in seconds', 60, { min: 0, exclusiveMin: true }),
    reportingDeadline: numberOption('reporting deadline in seconds', 300, { min: 0, exclusiveMin: true }),
  };
}

/** The plan's schedule from the schedule options; unset minimums are left to the schema defaults. */
export function toSchedule(o: ScheduleOptions): Schedule {
  return {
    rounds: o.rounds,
    target_clients: o.targetClients,
    over_selection: o.overSelection,
    ...(o.minReports !== undefined ? { min_reports: o.minReports } : {}),
    ...(o.minClientsInAggregate !== undefined ? { min_clients_in_aggregate: o.minClientsInAggregate } : {}),
    selection_timeout_s: o.selectionTimeout,
    reporting_deadline_s: o.reportingDeadline,
  };
}

/** How a library plan's `--secure` sums are aggregated (`schedule.secure_aggregation`). */
export type SecAggProtocol = 'secagg+' | 'secagg' | 'none';

/** The secure-aggregation options of the plans with a `--secure` variant. */
export interface SecAggOptions {
  secureAggregation: SecAggProtocol;
  sharingTimeout: number;
  unmaskingTimeout: number;
}

/** `--secure-aggregation`, `--sharing-timeout`, `--unmasking-timeout`. */
export function secAggOptions(): OptionSpecs<SecAggOptions> {
  return {
    secureAggregation: choiceOption(
      '--secure: secagg+ masks the secure sums (the server sees only their sum), secagg on the complete graph, none sums them in the clear',
      'secagg+',
      ['secagg+', 'secagg', 'none'],
    ),
    sharingTimeout: numberOption('--secure with SecAgg: seconds the cohort has to exchange key shares', 60, {
      min: 0,
      exclusiveMin: true,
    }),
    unmaskingTimeout: numberOption(
      '--secure with SecAgg: seconds the survivors have to send their unmasking shares',
      60,
      { min: 0, exclusiveMin: true },
    ),
  };
}

/** The plan's schedule, with how its secure sums are aggregated when it has any. */
export function secureSchedule(o: ScheduleOptions & SecAggOptions, secure: boolean): Schedule {
  if (!secure) return toSchedule(o);
  const setting =
    o.secureAggregation === 'none'
      ? { protocol: o.secureAggregation }
      : {
          protocol: o.secureAggregation,
          sharing_timeout_s: o.sharingTimeout,
          unmasking_timeout_s: o.unmaskingTimeout,
        };
  return { ...toSchedule(o), secure_aggregation: setting };
}
