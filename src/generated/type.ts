/* Generated from schemas/type.schema.json by scripts/gen-types.js; do not edit. */

/**
 * A TensorFlow Federated type: a tensor, a struct (named tuple) or a sequence.
 */
export type TffType = TensorType | StructType | SequenceType;
export type Dtype = 'float32' | 'int32' | 'bool';

export interface TensorType {
  kind: 'tensor';
  dtype: Dtype;
  /**
   * @maxItems 8
   */
  shape: (number | null)[];
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
