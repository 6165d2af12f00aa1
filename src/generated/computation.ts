/* Generated from schemas/computation.schema.json by scripts/gen-types.js; do not edit. */

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
