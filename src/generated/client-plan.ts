/* Generated from schemas/client-plan.schema.json by scripts/gen-types.js; do not edit. */

/**
 * A node, parameter or function name. "__proto__" is reserved: JavaScript objects built by assignment would lose it.
 */
export type Name = string;
/**
 * A TensorFlow Federated type: a tensor, a struct (named tuple) or a sequence.
 */
export type TffType = TensorType | StructType | SequenceType;
export type Dtype = 'float32' | 'int32' | 'bool';
/**
 * A TensorFlow Federated type: a tensor, a struct (named tuple) or a sequence.
 */
export type TffType1 = TensorType | StructType | SequenceType;

/**
 * The body of GET /v1/plans/{id}/client-plan: everything a client needs to run its task. A client runs work on <D, C>, D being its batches of client_data.element and C the round's broadcast bundle decoded as broadcast_type, and uploads the result, <U, V1, V2, V3>, as a bundle of upload_type (docs/protocol.md). The server builds it once per plan (src/rounds/plan-cache.ts, loadPlan) from the checked plan; it never changes, so its ETag never does either.
 */
export interface ClientPlan {
  /**
   * The version of this document. A client that does not know the value must not run the plan.
   */
  format: 'roundhouse.client-plan/v1';
  /**
   * The plan's id: `p` + 12 lowercase base32 characters.
   */
  plan_id: string;
  work: Computation;
  /**
   * The named functions `work` reaches through call, fold, repeat and value_and_grad nodes, transitively, and only those; sorted by name. Empty when work calls none.
   */
  functions: {
    [k: string]: Computation1;
  };
  client_data: ClientDataSpec;
  broadcast_type: TffType1;
  /**
   * The type of work's result as the type checker derived it: a struct of exactly four unnamed fields U, V1, V2, V3 (each any type without a sequence; often a struct, possibly empty, but U may be a bare tensor), the type of the bundle a client uploads.
   */
  upload_type: TffType & {
    kind: 'struct';
    /**
     * @minItems 4
     * @maxItems 4
     */
    fields: {}[];
  };
}
/**
 * The plan's `work` computation, of type (<D, C> -> <U, V1, V2, V3>), as submitted (docs/ir.md).
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
 * One computation of the IR: an optional parameter, a list of nodes in evaluation order, and the name of the result.
 */
export interface Computation1 {
  parameter?: Parameter;
  nodes: Node[];
  result: Name;
}
/**
 * The plan's client_data: the collection a client reads, the type of one batch (element; the leading dimension of each tensor is the batch dimension) and batch_size.
 */
export interface ClientDataSpec {
  collection: string;
  element: TffType;
  batch_size: number;
}
