/**
 * The stateful program document (docs/stateful.md): named steps over values placed at the server or at the
 * devices of a cohort, where a device's value reaches the server only through an `aggregate` step. The
 * readonly view the code reads; schemas/program.schema.json is the source of truth (program.test.ts fails
 * to compile when the two part), and `checkProgram` (check.ts) is what makes JSON a Program.
 */
import type { Computation } from '../generated/computation';
import type { ClientDataSpec } from '../generated/plan';

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
