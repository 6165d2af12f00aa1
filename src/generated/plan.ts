/* Generated from schemas/plan.schema.json by scripts/gen-types.js; do not edit. */

/**
 * A TensorFlow Federated type: a tensor, a struct (named tuple) or a sequence.
 */
export type TffType = TensorType | StructType | SequenceType;
export type Dtype = 'float32' | 'int32' | 'bool';
/**
 * A node, parameter or function name. "__proto__" is reserved: JavaScript objects built by assignment would lose it.
 */
export type Name = string;
export type UpdatePath = string;
export type BoundMode = 'clip' | 'reject';

/**
 * A federated computation in MapReduce form, with its client data spec and round schedule. Exactly one of initialize and initial_state must be present. The optional evaluate computation, of type (<S, D> -> metrics), is run by tools on held-out data, never on client uploads. client_data.element is the type of one batch (the leading dimension of each tensor is the batch dimension).
 */
export interface Plan {
  format: 'roundhouse.plan/v1';
  name: string;
  description?: string;
  /**
   * The population of clients the plan is published to; defaults to the client data collection.
   */
  population?: string;
  client_data: ClientDataSpec;
  schedule: Schedule;
  initialize?: Computation;
  initial_state?: InitialState;
  computations: MapReduceForm;
  functions?: Functions;
  evaluate?: Computation;
  update_bounds?: UpdateBounds;
  dp?: DifferentialPrivacy;
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
export interface Schedule {
  /**
   * A server may allow fewer (SCHEDULE_MAX_ROUNDS, default 100000): every round keeps its record and broadcast until the plan is deleted.
   */
  rounds: number;
  /**
   * A server may allow fewer (SCHEDULE_MAX_TARGET_CLIENTS, default 100000).
   */
  target_clients: number;
  over_selection?: number;
  /**
   * Reports needed by the deadline for the round to count; defaults to target_clients.
   */
  min_reports?: number;
  /**
   * No aggregate of fewer clients is ever released; defaults to min_reports.
   */
  min_clients_in_aggregate?: number;
  /**
   * Seconds a round attempt selects clients. A server refuses (422 PLAN_OUT_OF_BOUNDS) values outside its SCHEDULE_MIN_SECONDS..SCHEDULE_MAX_SECONDS, by default 1 s to 7 days.
   */
  selection_timeout_s?: number;
  /**
   * Seconds selected clients have to report. A server refuses (422 PLAN_OUT_OF_BOUNDS) values outside its SCHEDULE_MIN_SECONDS..SCHEDULE_MAX_SECONDS, by default 1 s to 7 days.
   */
  reporting_deadline_s?: number;
  secure_aggregation?: SecureAggregation;
}
/**
 * How the secure sums (V1, V2, V3 of work) are aggregated. Required when work has secure-sum outputs. 'secagg+' masks every client's secure-sum values with SecAgg+ (Bell et al. 2020: pairwise masks on a sparse random graph, self masks, Shamir-shared keys for dropout recovery), so the server only ever sees their sum; 'secagg' is the same protocol on the complete graph (Bonawitz et al. 2017); 'none' sums them in the clear (the server sees each client's values). The graph's degree and threshold come from the dropout and adversarial rates (FCP's graph parameter finder) unless both are given. See docs/server.md, 'Secure aggregation'.
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
 * The initial server state as a base64 safetensors bundle, instead of an initialize computation.
 */
export interface InitialState {
  encoding: 'safetensors+base64';
  data: string;
}
export interface MapReduceForm {
  prepare: Computation;
  work: Computation;
  zero: Computation;
  accumulate: Computation;
  merge: Computation;
  report: Computation;
  secure_sum_bitwidth: Computation;
  secure_sum_max_input: Computation;
  secure_modular_sum_modulus: Computation;
  update: Computation;
}
/**
 * Named computations reached by call, fold, repeat and value_and_grad nodes.
 */
export interface Functions {
  [k: string]: Computation;
}
/**
 * Bounds on the plain update U that the server enforces on every upload before it reaches an accumulator (and the local runner on every client's U). Value ranges apply first, then norm bounds. A path names a field inside U: field names (or indices of unnamed fields) joined by '/', e.g. 'delta/w0'; a path names every tensor below it, and '' names all of U. See docs/update-bounds.md.
 */
export interface UpdateBounds {
  /**
   * @maxItems 1024
   */
  ranges?: ValueRange[];
  /**
   * @maxItems 1024
   */
  norms?: NormBound[];
}
/**
 * Every element of the named int32 or float32 tensors must lie in [min, max] (at least one of them given); 'clip' clamps elements outside, 'reject' refuses the upload (400 UPDATE_OUT_OF_BOUNDS). For int32 tensors min and max must be int32 integers.
 */
export interface ValueRange {
  path: UpdatePath;
  min?: number;
  max?: number;
  mode: BoundMode;
}
/**
 * The L2 norm of all elements of the named float32 tensors taken together as one vector must be at most max_norm; 'clip' scales those tensors by max_norm / norm, 'reject' refuses the upload (400 UPDATE_OUT_OF_BOUNDS).
 */
export interface NormBound {
  /**
   * @minItems 1
   * @maxItems 1024
   */
  paths: UpdatePath[];
  max_norm: number;
  mode: BoundMode;
}
/**
 * Central differential privacy that the server applies (docs/server.md, "Differential privacy"). Each client's record (the tensors at `record` in U) is clipped by the server to the round's L2 norm bound; the server sums the clipped records itself, adds Gaussian noise of standard deviation noise_multiplier x clip to the sum, and puts the noisy sum at `record` in the merged accumulator A before report. U may hold nothing but the record and the adaptive-clipping indicator, and A nothing but those and an optional client count, so everything released derives from noisy sums and the count. The accountant charges every completed round; a round that would take the privacy spent past target.epsilon is not run: the plan completes with that reason.
 */
export interface DifferentialPrivacy {
  /**
   * Path (field names, or indices when unnamed, joined by '/'; '' for the whole value) of the float32 tensors that form one client's record: in U, where A has the same tensors at the same path; or, with secure_sum, of int32 tensors in that secure sum.
   */
  record: string;
  /**
   * The record travels in this secure sum (bitwidth: V1, max_input: V2, modulus: V3) instead of U, so that with secure aggregation the server sees only its sum: each coordinate x as the integer round(x scale), plus any constant offset the sum's range needs. record (and clients_count) are then paths in that V; U must be empty and the other Vs too. The server adds the noise to the unmasked sum, in integer units, with standard deviation z (clip scale + sqrt(d) / 2): rounding can lengthen a clipped record by up to sqrt(d) / 2 units. The server cannot clip what it cannot see: honest clients clip in work (a hostile client's record harms the model, not the privacy of others). Fixed clipping only.
   */
  secure_sum?: 'bitwidth' | 'max_input' | 'modulus';
  /**
   * With secure_sum: integer units per unit of the record.
   */
  scale?: number;
  clip: DpClip;
  /**
   * Adaptive clipping: path in U and in A of a float32 scalar, the client's 0.5 when its record's norm was at most the round's clip and -0.5 otherwise. The server clips it to [-0.5, 0.5], sums it and adds noise of standard deviation clip.adaptive.clipped_count_stddev.
   */
  indicator?: string;
  /**
   * Path of an int32 scalar the server sets to the number of clients in the aggregate: in A, or with secure_sum in that secure sum.
   */
  clients_count?: string;
  /**
   * Path in the broadcast (prepare's result) of a float32 scalar the server overwrites with the round's clip norm, so that work can clip to it. Required with adaptive clipping.
   */
  clip_broadcast?: string;
  /**
   * z: the noise on the record sum has standard deviation z x clip (with adaptive clipping, z' x clip, where z'^-2 = z^-2 - (2 clipped_count_stddev)^-2, so that both sums together spend what one Gaussian sum of multiplier z does).
   */
  noise_multiplier: number;
  /**
   * The expected clients per round: the sampling rate's numerator and adaptive clipping's denominator. Defaults to schedule.target_clients.
   */
  clients_per_round?: number;
  /**
   * The privacy target: delta, and the epsilon the plan may spend. Without epsilon the spending is tracked and shown at delta, never enforced (a plan with noise_multiplier 0 spends an infinite epsilon and may only run without one).
   */
  target: {
    epsilon?: number;
    delta: number;
  };
  /**
   * no-amplification: every round is charged as the Gaussian mechanism on all clients (sampling rate 1), which holds however clients come to check in. subsampled: charged as Poisson subsampling at rate clients_per_round / population_size, which holds only if each device takes part in a round independently with that probability; check-in is not that (docs/server.md).
   */
  accounting?: 'no-amplification' | 'subsampled';
  /**
   * The number of devices in the population; required with accounting subsampled.
   */
  population_size?: number;
}
/**
 * Exactly one of norm (a fixed L2 clip) and adaptive.
 */
export interface DpClip {
  norm?: number;
  adaptive?: DpAdaptiveClip;
}
/**
 * Andrew et al., 'Differentially Private Learning with Adaptive Clipping': after each round clip <- clip x exp(-learning_rate x (b - target_quantile)), b the noisy fraction of clients whose norm was at most the clip. Defaults as TFF's gaussian_adaptive.
 */
export interface DpAdaptiveClip {
  initial_norm?: number;
  target_quantile?: number;
  learning_rate?: number;
  /**
   * Defaults to 0.05 x clients_per_round.
   */
  clipped_count_stddev?: number;
}
