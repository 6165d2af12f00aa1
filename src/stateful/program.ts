/**
 * The stateful program document (docs/stateful.md): named steps over values placed at the server or at the
 * devices of a cohort, where a device's value reaches the server only through an `aggregate` step. The
 * readonly view the code reads; schemas/program.schema.json is the source of truth (program.test.ts fails
 * to compile when the two part), and `checkProgram` (check.ts) is what makes JSON a Program.
 */
import type { Computation } from '../generated/computation';
import type { ClientDataSpec, SecureAggregation } from '../generated/plan';
import type { SecureSumKind } from '../aggregation/secure-sum';
import type { SecureSumSpec } from './requests';

/** The `format` of a program document. */
export const PROGRAM_FORMAT = 'roundhouse.program/v1';

/** Who takes part in a program: one cohort of devices runs every step. */
export interface Cohort {
  /** Devices the server recruits into the cohort. */
  readonly target_clients: number;
  /** Fewest devices the cohort may start with; every aggregation's minimum is at least this (and this >= 2). */
  readonly min_clients: number;
  /** How long the server recruits before starting with at least `min_clients` (else the program fails). */
  readonly join_timeout_s: number;
  /** How long a device may take to answer a batch of requests before its session fails. */
  readonly step_timeout_s: number;
}

/** A server computation on server values; with no args `fn` takes no parameter, with several an unnamed struct. */
export interface ServerCallStep {
  readonly op: 'server_call';
  readonly fn: string;
  readonly args?: readonly string[];
  readonly result: string;
}

/** A server value sent to every device of the cohort (TFF's federated_broadcast). */
export interface BroadcastStep {
  readonly op: 'broadcast';
  readonly value: string;
  readonly result: string;
}

/** The device's batches of one collection of `client_data`: a client-placed sequence. */
export interface ClientDataStep {
  readonly op: 'client_data';
  readonly collection: string;
  readonly result: string;
}

/** A computation each device runs on its own client values (TFF's federated_map); the result stays there. */
export interface ClientCallStep {
  readonly op: 'client_call';
  readonly fn: string;
  readonly args?: readonly string[];
  readonly result: string;
}

/** A struct of client values, made on each device. */
export interface ClientStructStep {
  readonly op: 'client_struct';
  readonly fields: readonly { readonly name?: string; readonly value: string }[];
  readonly result: string;
}

/** One field (by name or position) of a client struct, selected on each device. */
export interface ClientSelectStep {
  readonly op: 'client_select';
  readonly value: string;
  readonly field: string | number;
  readonly result: string;
}

/**
 * The only way a client value becomes a server value: the devices' members folded by `zero`, `accumulate`,
 * `merge` and `report` (typed as in the MapReduce form), released only over at least `min_clients` devices.
 */
export interface AggregateStep {
  readonly op: 'aggregate';
  readonly value: string;
  readonly zero: string;
  readonly accumulate: string;
  readonly merge: string;
  readonly report: string;
  readonly min_clients: number;
  /** How long to wait for contributions once the step starts (default: the cohort's step_timeout_s). */
  readonly deadline_s?: number;
  readonly result: string;
}

/**
 * The devices' members of a client value of int32 tensors summed with the semantics of one of TFF's secure
 * sums (exactly one of `bitwidth`, `max_input`, `modulus`), under secure aggregation (SecAgg+ by default):
 * the server sees only the sum, released only over at least `min_clients` devices.
 */
export interface SecureSumStep {
  readonly op: 'secure_sum';
  readonly value: string;
  readonly bitwidth?: number;
  readonly max_input?: number;
  readonly modulus?: number;
  readonly min_clients: number;
  /** How long the sum takes once the step starts (default: the cohort's step_timeout_s). */
  readonly deadline_s?: number;
  /** How the sum is masked (default SecAgg+), as a plan's `schedule.secure_aggregation`. */
  readonly secure_aggregation?: SecureAggregation;
  readonly result: string;
}

/** A step that makes client values a server value: the only ways one gets there. */
export type AggregationStep = AggregateStep | SecureSumStep;

/** The secure sums a step may name, in the order of the MapReduce form's V1, V2, V3. */
export const SECURE_SUM_KINDS: readonly SecureSumKind[] = ['bitwidth', 'max_input', 'modulus'];

/** The kinds of secure sum a step names (one in a valid program) with their parameters. */
export function secureSumsOf(step: SecureSumStep): { kind: SecureSumKind; param: number }[] {
  return SECURE_SUM_KINDS.flatMap((kind) => (step[kind] === undefined ? [] : [{ kind, param: step[kind] }]));
}

/** What a device's contribution to a secure_sum step carries of it (a valid step names one kind). */
export function secureSumSpec(step: SecureSumStep): SecureSumSpec {
  const [first] = secureSumsOf(step);
  if (!first) throw new Error(`secure_sum ${step.result} names no kind`);
  return { kind: first.kind, parameter: first.param };
}

/** The devices drop these client values; later steps may not use them. */
export interface DisposeStep {
  readonly op: 'dispose';
  readonly values: readonly string[];
}

export type Step =
  | ServerCallStep
  | BroadcastStep
  | ClientDataStep
  | ClientCallStep
  | ClientStructStep
  | ClientSelectStep
  | AggregateStep
  | SecureSumStep
  | DisposeStep;

/** A stateful program. */
export interface Program {
  readonly format: typeof PROGRAM_FORMAT;
  readonly name: string;
  readonly description?: string;
  /** The population whose devices form the cohort. */
  readonly population: string;
  /** The device's data collections a `client_data` step may name, each like a plan's client_data. */
  readonly client_data: Readonly<Record<string, ClientDataSpec>>;
  readonly cohort: Cohort;
  readonly functions?: Readonly<Record<string, Computation>>;
  readonly computations: Readonly<Record<string, Computation>>;
  readonly steps: readonly Step[];
  /** Server values released as the program's result, by output name. */
  readonly outputs: Readonly<Record<string, string>>;
}

/** Where a value lives: one value at the server, or one member per device of the cohort. */
export type Placement = 'server' | 'clients';
