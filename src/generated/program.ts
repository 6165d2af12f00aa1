/* Generated from schemas/program.schema.json by scripts/gen-types.js; do not edit. */

/**
 * A TensorFlow Federated type: a tensor, a struct (named tuple) or a sequence.
 */
export type TffType = TensorType | StructType | SequenceType;
export type Dtype = 'float32' | 'int32' | 'bool';
/**
 * A node, parameter or function name. "__proto__" is reserved: JavaScript objects built by assignment would lose it.
 */
export type Name = string;
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
/**
 * Value names; with none the computation takes no parameter, with one that value, with several an unnamed struct of them in order.
 *
 * @maxItems 1024
 */
export type Args = Name[];

/**
 * A stateful program (docs/stateful.md): named steps over values placed at the server or at the devices of one cohort. Every step but dispose defines one value under its result name, once; a client value reaches the server only through an aggregate or secure_sum step. The schema says the document's shape; src/stateful/check.ts checks names, placements, the privacy rule, the minimums and types.
 */
export interface Program {
  format: 'roundhouse.program/v1';
  name: string;
  description?: string;
  /**
   * The population whose devices form the cohort.
   */
  population: string;
  client_data: ProgramClientData;
  cohort: Cohort;
  functions?: ProgramFunctions;
  computations: ProgramComputations;
  /**
   * @minItems 1
   * @maxItems 10000
   */
  steps: Step[];
  outputs: ProgramOutputs;
}
/**
 * The device's data collections a client_data step may name, by name, each like a plan's client_data.
 */
export interface ProgramClientData {
  [k: string]: ClientDataSpec;
}
export interface ClientDataSpec {
  collection: string;
  element: TffType;
  batch_size: number;
}
export interface TensorType {
  kind: 'tensor';
  dtype: Dtype;
  /**
   * @maxItems 8
   */
  shape: (number | null)[];
  /**
   * The closed interval [min, max] every value must lie in. Declared on the tensors of client_data.element (for example labels: [0, classes - 1]) and checked wherever client data is loaded; elsewhere it is informational and ignored by the type checker.
   *
   * @minItems 2
   * @maxItems 2
   */
  range?: number[];
}
export interface StructType {
  kind: 'struct';
  /**
   * @maxItems 1024
   */
  fields: StructField[];
}
export interface StructField {
  name?: string;
  type: TffType;
}
export interface SequenceType {
  kind: 'sequence';
  element: TffType;
}
/**
 * Who takes part: the server recruits one cohort of devices and runs every step with it. min_clients must be at least 2 and target_clients at least min_clients (checked with the program, as PROGRAM_PRIVACY_VIOLATION and PLAN_TYPE_ERROR).
 */
export interface Cohort {
  /**
   * Devices the server recruits. A server may allow fewer (SCHEDULE_MAX_TARGET_CLIENTS, default 100000).
   */
  target_clients: number;
  /**
   * Fewest devices the cohort may start with; every aggregation's min_clients is at least this.
   */
  min_clients: number;
  /**
   * Seconds the server recruits before starting with at least min_clients (else the program fails). A server refuses (422 PLAN_OUT_OF_BOUNDS) values outside its SCHEDULE_MIN_SECONDS..SCHEDULE_MAX_SECONDS.
   */
  join_timeout_s: number;
  /**
   * Seconds a device may take to answer a batch of requests before its session fails. Bounded as join_timeout_s.
   */
  step_timeout_s: number;
}
/**
 * Named computations reached by call, fold, repeat and value_and_grad nodes.
 */
export interface ProgramFunctions {
  [k: string]: Computation;
}
/**
 * One computation of the IR: an optional parameter, a list of nodes in evaluation order, and the name of the result.
 */
export interface Computation {
  parameter?: Parameter;
  nodes: Node[];
  result: Name;
}
export interface Parameter {
  name: Name;
  type: TffType;
}
export interface Node {
  name: Name;
  op: string;
  /**
   * @maxItems 1024
   */
  args?: Name[];
  attrs?: {
    [k: string]: unknown;
  };
}
/**
 * The computations steps call, by name; where each runs follows from the steps that call it.
 */
export interface ProgramComputations {
  [k: string]: Computation;
}
/**
 * A computation the server runs on server values; its result is a server value.
 */
export interface ServerCallStep {
  op: 'server_call';
  fn: Name;
  args?: Args;
  result: Name;
}
/**
 * A server value (not a sequence) sent to every device of the cohort (TFF's federated_broadcast).
 */
export interface BroadcastStep {
  op: 'broadcast';
  value: Name;
  result: Name;
}
/**
 * The device's batches of one collection of client_data: a client-placed sequence.
 */
export interface ClientDataStep {
  op: 'client_data';
  collection: Name;
  result: Name;
}
/**
 * A computation each device runs on its own client values (TFF's federated_map); the result stays there.
 */
export interface ClientCallStep {
  op: 'client_call';
  fn: Name;
  args?: Args;
  result: Name;
}
/**
 * A struct of client values, made on each device; fields are named or not.
 */
export interface ClientStructStep {
  op: 'client_struct';
  /**
   * @maxItems 1024
   */
  fields: ClientStructField[];
  result: Name;
}
export interface ClientStructField {
  name?: Name;
  value: Name;
}
/**
 * One field of a client struct, by name or position, selected on each device.
 */
export interface ClientSelectStep {
  op: 'client_select';
  value: Name;
  field: Name | number;
  result: Name;
}
/**
 * The only way a client value becomes a server value: the devices' members folded by zero ( -> A), accumulate (<A, U> -> A), merge (<A, A> -> A) and report (A -> R), released only over at least min_clients devices (at least the cohort's min_clients, checked with the program).
 */
export interface AggregateStep {
  op: 'aggregate';
  value: Name;
  zero: Name;
  accumulate: Name;
  merge: Name;
  report: Name;
  min_clients: number;
  /**
   * Seconds to wait for contributions once the step starts (default: the cohort's step_timeout_s). Bounded as the cohort's timeouts.
   */
  deadline_s?: number;
  result: Name;
}
/**
 * A client value of int32 tensors of fully known shape summed over the devices with the semantics of one of TFF's secure sums, named by exactly one parameter: bitwidth (federated_secure_sum_bitwidth: each value in [0, 2^bitwidth - 1]), max_input (federated_secure_sum: each value in [0, max_input]) or modulus (federated_secure_modular_sum: each value taken modulo it, the sum too). A device with a value outside its range is not summed and its session fails. The sum is computed under secure aggregation (SecAgg+ unless secure_aggregation says otherwise), so the server sees only the sum; it is released only over at least min_clients devices.
 */
export interface SecureSumStep {
  op: 'secure_sum';
  value: Name;
  /**
   * Bits of every value: each must lie in [0, 2^bitwidth - 1].
   */
  bitwidth?: number;
  /**
   * The largest value: each must lie in [0, max_input].
   */
  max_input?: number;
  /**
   * Every value is taken modulo it, and the sum is modulo it too.
   */
  modulus?: number;
  min_clients: number;
  /**
   * Seconds the sum takes, from its start to the last upload (default: the cohort's step_timeout_s): the key exchange's selection and sharing take a quarter each by default. Bounded as the cohort's timeouts.
   */
  deadline_s?: number;
  secure_aggregation?: SecureAggregation;
  result: Name;
}
/**
 * How the sum is masked, as a plan's schedule.secure_aggregation (default {"protocol": "secagg+"}); 'none' sums in the clear (the server then sees each device's value). Its sharing_timeout_s and unmasking_timeout_s default to a quarter of deadline_s.
 */
export interface SecureAggregation {
  protocol: 'secagg+' | 'secagg' | 'none';
  /**
   * The fraction of selected clients assumed to drop out during the protocol.
   */
  dropout_rate?: number;
  /**
   * The fraction of clients assumed to collude with the server.
   */
  adversarial_rate?: number;
  /**
   * 'curious': an honest-but-curious server; 'semi-malicious': a server that may also lie to clients about who dropped out (needs a denser graph).
   */
  adversary?: 'curious' | 'semi-malicious';
  /**
   * Explicit neighbourhood size (odd, the client itself included; at most 255); needs threshold too.
   */
  degree?: number;
  /**
   * Explicit Shamir threshold (shares needed to recover a client's secrets); needs degree too.
   */
  threshold?: number;
  /**
   * Seconds the cohort has to exchange encrypted key shares (R1) once selection ends.
   */
  sharing_timeout_s?: number;
  /**
   * Seconds the survivors have to send the shares that unmask the sum (R3) once reporting closes.
   */
  unmasking_timeout_s?: number;
}
/**
 * The devices drop these client values; later steps may not use them.
 */
export interface DisposeStep {
  op: 'dispose';
  /**
   * @minItems 1
   * @maxItems 1024
   */
  values: Name[];
}
/**
 * Server values released as the program's result: output name to value name.
 */
export interface ProgramOutputs {
  [k: string]: Name;
}
