/* Generated from schemas/conformance-manifest.schema.json by scripts/gen-types.js; do not edit. */

/**
 * conformance/manifest.json: the cases of the client conformance kit (conformance/README.md). Each case is the directory conformance/<id>/ holding client-plan.json, broadcast.safetensors, examples.csv and, when the client must upload, expected.safetensors.
 */
export interface ConformanceManifest {
  /**
   * The version of the kit's layout. A runner that does not know the value must not run it.
   */
  format: 'roundhouse.conformance/v1';
  cases: Case[];
}
export interface Case {
  /**
   * <plan>/<name>, also the case's directory below the kit.
   */
  id: string;
  /**
   * The library plan the case was built from.
   */
  plan: string;
  /**
   * What the case exercises.
   */
  description: string;
  /**
   * upload: the client must write the expected bundle and exit 0; refuse: it must exit non-zero.
   */
  expect: 'upload' | 'refuse';
  tolerance?: Tolerance;
}
/**
 * A float32 element passes when |got - expected| <= abs + rel * |expected|; int32 and bool elements must be equal.
 */
export interface Tolerance {
  abs: number;
  rel: number;
}
