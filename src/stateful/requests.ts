/**
 * The executor requests a program's driver sends a device, and the device's answers (docs/stateful.md, "The
 * session protocol"), in their in-process form: what the reference runner and the SDK's executor exchange.
 * The wire form differs only where bytes travel: `create_value` there carries a `bundle_url` the device
 * downloads the bundle from, and `contribute` carries an `upload_url` and a single-use `token` the device
 * uploads its bundle to; here the bytes are in the request and in the answer.
 */
import { structType, type TffType } from '../compute/types';
import { structValue, type Value } from '../compute/value';
import type { ErrorCode } from '../errors';
import type { SecureSumKind } from '../aggregation/secure-sum';

/** A secure sum a contribution goes to: its kind and the step's parameter (bitwidth, max_input or modulus). */
export interface SecureSumSpec {
  readonly kind: SecureSumKind;
  readonly parameter: number;
}

/** Hold a broadcast value (the bundle of a server value, of `type`) under `handle`. */
export interface CreateValueRequest {
  readonly kind: 'create_value';
  readonly handle: string;
  readonly type: TffType;
  /** The bundle's bytes; on the wire a `bundle_url` to download them from. */
  readonly bundle: Uint8Array;
}

/** Hold the device's batches of a collection of the client program's `client_data`. */
export interface CreateDataRequest {
  readonly kind: 'create_data';
  readonly handle: string;
  readonly collection: string;
}

/**
 * Run the client program's computation `fn` on held values and hold the result: with no args `fn` takes no
 * parameter, with one its parameter is that value, with several an unnamed struct of them in order.
 */
export interface CreateCallRequest {
  readonly kind: 'create_call';
  readonly handle: string;
  readonly fn: string;
  readonly args: readonly string[];
}

/** Hold a struct of held values. */
export interface CreateStructRequest {
  readonly kind: 'create_struct';
  readonly handle: string;
  readonly fields: readonly { readonly name?: string; readonly handle: string }[];
}

/** Hold one field (by name or position) of a held struct. */
export interface CreateSelectionRequest {
  readonly kind: 'create_selection';
  readonly handle: string;
  readonly source: string;
  readonly field: string | number;
}

/**
 * Contribute a held value to the named aggregation. In process the answer carries the value's bundle; on
 * the wire the device uploads it to `upload_url` with `token`, as a round's upload.
 */
export interface ContributeRequest {
  readonly kind: 'contribute';
  readonly aggregation: string;
  readonly handle: string;
  /**
   * Set when the aggregation is a `secure_sum`: the value (int32 tensors) is its secure-sum update of this
   * kind, and a value outside the kind's range is refused on the device (SECURE_SUM_OUT_OF_RANGE).
   */
  readonly secure_sum?: SecureSumSpec;
}

/** Drop held values. */
export interface DisposeRequest {
  readonly kind: 'dispose';
  readonly handles: readonly string[];
}

/** One executor request. */
export type ExecutorRequest =
  | CreateValueRequest
  | CreateDataRequest
  | CreateCallRequest
  | CreateStructRequest
  | CreateSelectionRequest
  | ContributeRequest
  | DisposeRequest;

/** A `create_*` request succeeded: the handle now exists, with the type of what it holds. */
export interface CreatedAnswer {
  readonly ok: true;
  readonly kind: 'created';
  readonly handle: string;
  readonly type: TffType;
}

/** A `contribute` request succeeded: the bundle of the held value (on the wire: it was uploaded). */
export interface ContributedAnswer {
  readonly ok: true;
  readonly kind: 'contributed';
  readonly aggregation: string;
  readonly bundle: Uint8Array;
  /** The bundle's type: `contributionType` of the held value. */
  readonly type: TffType;
}

/** A `dispose` request succeeded. */
export interface DisposedAnswer {
  readonly ok: true;
  readonly kind: 'disposed';
}

/**
 * A request failed: `HANDLE_UNKNOWN` (the device does not hold a handle the request names: its state is
 * gone), `REQUEST_INVALID` (a handle created twice, an unknown computation or collection), the codes of
 * decoding (`BUNDLE_*`), of client data (`DATA_INVALID`) and of evaluation (`EVAL_*`). Any failure fails the
 * device's session (docs/stateful.md, "Failure semantics").
 */
export interface FailedAnswer {
  readonly ok: false;
  readonly code: ErrorCode;
  readonly message: string;
}

/** The answer to one executor request. */
export type ExecutorAnswer = CreatedAnswer | ContributedAnswer | DisposedAnswer | FailedAnswer;

/** Where in `<U, V1, V2, V3>` a contribution's value goes: U, or the secure sum's V. */
function slotOf(secureSum: SecureSumSpec | undefined): number {
  return secureSum === undefined ? 0 : 1 + ['bitwidth', 'max_input', 'modulus'].indexOf(secureSum.kind);
}

/**
 * The type a contribution travels as: a round's upload `<U, V1, V2, V3>` with the held value as U and the
 * secure sums empty (a plain aggregation), or as the secure sum's V and U empty (a `secure_sum`), so that the
 * upload route and the aggregation workers take it exactly as a round's upload (docs/stateful.md, "The
 * session protocol"). Its tensors are named `<slot>/...`.
 */
export function contributionType(held: TffType, secureSum?: SecureSumSpec): TffType {
  const slot = slotOf(secureSum);
  return structType([0, 1, 2, 3].map((k) => [undefined, k === slot ? held : structType([])] as const));
}

/** A held value as a contribution (`contributionType`); shares the value's tensors. */
export function contributionValue(value: Value, secureSum?: SecureSumSpec): Value {
  const slot = slotOf(secureSum);
  return structValue([0, 1, 2, 3].map((k) => [undefined, k === slot ? value : structValue([])] as const));
}
