/**
 * The session protocol on the wire (docs/stateful.md, "The session protocol"): what a device and the server
 * exchange over HTTP while the device takes part in a stateful program. Client-initiated only: the device
 * checks in, is given a session, then long-polls for executor requests and posts its answers. The requests
 * are those of `requests.ts` but for the two that move bytes: `create_value` names a `bundle_url` to
 * download the broadcast from, and `contribute` names an `upload_url` and a single-use task `token` to
 * upload the held value's bundle to, exactly as a round's upload (`POST /v1/tasks/{task}/result`).
 */
import type { TffType } from '../compute/types';
import type { ErrorCode } from '../errors';
import type {
  CreateCallRequest,
  CreateDataRequest,
  CreateSelectionRequest,
  CreateStructRequest,
  DisposeRequest,
  SecureSumSpec,
} from './requests';

/**
 * What a check-in answers when the device joins a program's cohort (instead of `assignment` or `retry`).
 * Every URL is absolute; each session route takes `Authorization: Bearer <token>`.
 */
export interface SessionGrant {
  readonly program_id: string;
  readonly session_id: string;
  /** The session token: signed, bound to the program, the session and the device. */
  readonly token: string;
  /** `GET`: the client program (`roundhouse.client-program/v1`), with an ETag. */
  readonly client_program_url: string;
  /** `GET ?after=<seq>&wait=<seconds>`: the next requests (long poll). */
  readonly requests_url: string;
  /** `POST`: answers to requests, in order. */
  readonly answers_url: string;
  /** `DELETE`: leave the session (the server then treats the device as gone). */
  readonly session_url: string;
  /** How long the server waits for an answer before it fails the session (seconds). */
  readonly step_timeout_s: number;
  /**
   * The highest request seq the server holds an answer for: 0 for a new session, more when a device checks
   * in again while its session lives (a restart). The device polls after it; a restarted device holds none
   * of the session's handles, so the next request naming one fails with HANDLE_UNKNOWN and ends the session.
   */
  readonly answered: number;
}

/** `create_value` on the wire: the bundle is downloaded from `bundle_url` (session token). */
export interface WireCreateValueRequest {
  readonly kind: 'create_value';
  readonly handle: string;
  readonly type: TffType;
  readonly bundle_url: string;
}

/**
 * `contribute` on the wire: the device uploads the held value's bundle to `upload_url` with `token` (a task
 * token, single use, as a round's upload), then answers `contributed`.
 */
export interface WireContributeRequest {
  readonly kind: 'contribute';
  readonly aggregation: string;
  readonly handle: string;
  readonly upload_url: string;
  readonly token: string;
  /** When the aggregation stops taking contributions (unix ms). */
  readonly deadline: number;
  /** A `secure_sum`'s kind and parameter: the held value goes as that secure sum's V (requests.ts). */
  readonly secure_sum?: SecureSumSpec;
  /**
   * Present when the secure sum is masked: the task's SecAgg exchange (`GET url` for its next step, with the
   * task token), run as a round's task runs it; the masked value is what is uploaded.
   */
  readonly secure_aggregation?: { readonly protocol: 'secagg+' | 'secagg'; readonly url: string };
}

/** One executor request on the wire. */
export type WireRequest =
  | WireCreateValueRequest
  | CreateDataRequest
  | CreateCallRequest
  | CreateStructRequest
  | CreateSelectionRequest
  | WireContributeRequest
  | DisposeRequest;

/** A numbered request: a session's requests are numbered from 1 and answered in order. */
export interface NumberedRequest {
  readonly seq: number;
  readonly request: WireRequest;
}

/**
 * The answer to `GET requests_url`: the requests after `after` that are ready (none when the wait ran out),
 * and `end` once the session is over: `completed` (the program finished), `failed` (the session or the
 * program failed, with the reason and a code) or `left`.
 */
export interface RequestsResponse {
  readonly requests: readonly NumberedRequest[];
  readonly end?: {
    readonly status: 'completed' | 'failed' | 'left';
    readonly code?: ErrorCode;
    readonly reason?: string;
  };
}

/** One answer on the wire. A value never travels in an answer: `created` says only that a handle exists. */
export type WireAnswer =
  | {
      readonly seq: number;
      readonly ok: true;
      readonly kind: 'created';
      readonly handle: string;
      readonly type: TffType;
    }
  | { readonly seq: number; readonly ok: true; readonly kind: 'contributed'; readonly aggregation: string }
  | { readonly seq: number; readonly ok: true; readonly kind: 'disposed' }
  | {
      readonly seq: number;
      readonly ok: false;
      readonly code: ErrorCode;
      /** The device's own words; the server neither keeps nor logs it (it may quote the device's data). */
      readonly message?: string;
    };

/** The body of `POST answers_url`. */
export interface AnswersBody {
  readonly answers: readonly WireAnswer[];
}

/** The answer to `POST answers_url`: the highest seq the server now holds an answer for. */
export interface AnswersResponse {
  readonly answered: number;
}

/** The longest long poll the server holds (seconds); a larger `wait` is cut to it. */
export const MAX_POLL_WAIT_S = 30;
