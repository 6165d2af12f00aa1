/**
 * Every failure the project reports on purpose carries a code from this table; the code fixes the HTTP
 * status, so that the API, the CLI and the client SDK agree on what each failure means.
 */
export const ERROR_CODES = {
  // plans
  PLAN_SCHEMA_INVALID: 400,
  PLAN_TYPE_ERROR: 400,
  PLAN_LIMIT_EXCEEDED: 400,
  /**
   * A stateful program that would let a client value reach the server other than through an aggregate, or an
   * aggregation (or cohort) minimum below the rule's (docs/stateful.md, "The rules").
   */
  PROGRAM_PRIVACY_VIOLATION: 400,
  // well-formed, but outside this server's configured bounds (schedule, estimated cost)
  PLAN_OUT_OF_BOUNDS: 422,
  // evaluation
  EVAL_LIMIT_EXCEEDED: 422,
  EVAL_ERROR: 422,
  /** An int32 accumulator overflowed: the round fails with the reason instead of wrapping silently. */
  EVAL_INT_OVERFLOW: 422,
  /** An evaluation crashed, aborted the backend, ran out of memory or time in its isolate (src/isolate). */
  EVAL_FAULT: 422,
  // tensors and bundles
  BUNDLE_MALFORMED: 400,
  BUNDLE_TYPE_MISMATCH: 400,
  BUNDLE_NOT_FINITE: 400,
  SECURE_SUM_OUT_OF_RANGE: 400,
  UPDATE_OUT_OF_BOUNDS: 400,
  // secure aggregation (src/secagg)
  /** A SecAgg+ message that breaks the protocol's rules (shape, indexes, order of steps). */
  SECAGG_BAD_MESSAGE: 400,
  /** An encrypted share that fails authentication or is addressed to another session, sender or receiver. */
  SECAGG_BAD_SHARE: 400,
  /** Fewer than `threshold` shares remain for some client: that client drops out, or the round aborts. */
  SECAGG_BELOW_THRESHOLD: 409,
  /** A client refuses an unmasking request that could expose an input (both kinds of share for one peer...). */
  SECAGG_UNMASK_REFUSED: 409,
  // data
  DATA_INVALID: 400,
  /** A client plan whose `format` this client does not read (the SDK's own check of a download). */
  CLIENT_PLAN_UNSUPPORTED: 400,
  // requests
  REQUEST_INVALID: 400,
  UNAUTHORIZED: 401,
  UNSUPPORTED_MEDIA_TYPE: 415,
  // tasks and uploads
  TOKEN_INVALID: 401,
  TOKEN_TASK_MISMATCH: 403,
  TOKEN_REUSED: 403,
  UPLOAD_LATE: 409,
  UPLOAD_DUPLICATE: 409,
  UPLOAD_TOO_LARGE: 413,
  // secure aggregation (docs/server.md, "Secure aggregation")
  /** The attempt does not run SecAgg, or the step is not the one its phase takes. */
  SECAGG_OFF: 409,
  SECAGG_PHASE: 409,
  SECAGG_TOO_EARLY: 409,
  SECAGG_KEYS_CHANGED: 409,
  SECAGG_ALREADY_SENT: 409,
  /** The task is not (or no longer) in the part of the cohort the step needs. */
  SECAGG_NOT_IN_COHORT: 409,
  SECAGG_NOT_SURVIVOR: 409,
  /** A step's message does not match what the task was asked for (recipients, shares' kinds). */
  SECAGG_WRONG_SHARE: 400,
  // stateful programs (docs/stateful.md)
  /** An executor request names a handle the device does not hold (its state is gone): its session fails. */
  HANDLE_UNKNOWN: 409,
  PROGRAM_NOT_FOUND: 404,
  SESSION_NOT_FOUND: 404,
  /** The session ended (failed, left, or its program ended): it takes no more answers. */
  SESSION_ENDED: 409,
  /** An answer out of order: not the session's next request, or one not issued yet. */
  ANSWER_OUT_OF_ORDER: 409,
  /** How a session ends when its device is silent for step_timeout_s while it owes answers (not an HTTP answer). */
  SESSION_TIMEOUT: 409,
  // devices (README, "Device credentials")
  DEVICE_CREDENTIAL_INVALID: 401,
  DEVICE_MISMATCH: 403,
  RATE_LIMITED: 429,
  // resources
  PLAN_NOT_FOUND: 404,
  ROUND_NOT_FOUND: 404,
  RESOURCE_NOT_FOUND: 404,
  PLAN_STATE_CONFLICT: 409,
  /** DELETE of a plan that is active or paused (cancel it first), or whose last round is still finishing. */
  PLAN_ACTIVE: 409,
  // capacity
  BUSY: 503,
  NOT_READY: 503,
  // generic
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  INTERNAL: 500,
} as const;

/** A machine-readable error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** One located problem: where (a JSON pointer or a computation/node path) and what. */
export interface ErrorDetail {
  readonly path: string;
  readonly message: string;
}

/** The one error class the project throws on purpose; it knows its HTTP status and code. */
export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: readonly ErrorDetail[] = [],
    options?: ErrorOptions,
  ) {
    super(
      details.length ? `${message}:\n${details.map((d) => `  ${d.path}: ${d.message}`).join('\n')}` : message,
      options,
    );
    this.name = 'AppError';
    this.status = ERROR_CODES[code];
  }

  /** The JSON body an API answers with. */
  toJSON(): { error: { code: ErrorCode; message: string; details: readonly ErrorDetail[] } } {
    return { error: { code: this.code, message: this.message.split('\n')[0] ?? '', details: this.details } };
  }
}
