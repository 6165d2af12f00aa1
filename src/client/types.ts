/**
 * The protocol as a client sees it (docs/server.md, "Protocol"). Declared here rather than imported from the
 * API's route modules so that the SDK never pulls server runtime code into a browser bundle; the shapes
 * are the server's, and test/sdk.test.ts runs them against a real server.
 */
import type { TffType } from '../compute/types';
import type { Computation } from '../generated/computation';
import type { ClientDataSpec } from '../generated/plan';
import type { ClientErrorCode } from './errors';
import type { SessionGrant } from '../stateful/wire';

export type { SessionGrant } from '../stateful/wire';

/** The `format` of the client plan document this SDK reads (and the server writes). */
export const CLIENT_PLAN_FORMAT = 'roundhouse.client-plan/v1';

/**
 * Why a client plan document's `format` is not the one this SDK reads, or null when it is: a later format
 * may change how `work` is called, and running it as this one would upload wrong numbers rather than fail.
 * Such a plan is refused with CLIENT_PLAN_UNSUPPORTED (the SDK, the reference client of the kit).
 */
export function clientPlanFormatProblem(doc: unknown): string | null {
  const format = (doc as { format?: unknown } | null)?.format;
  return format === CLIENT_PLAN_FORMAT
    ? null
    : `client plan format ${JSON.stringify(format)} is not ${CLIENT_PLAN_FORMAT}, the one this client reads`;
}

/** The client plan a server serves for a plan: everything a client needs to run `work`. */
export interface ClientPlan {
  readonly format: typeof CLIENT_PLAN_FORMAT;
  readonly plan_id: string;
  readonly work: Computation;
  readonly functions: Readonly<Record<string, Computation>>;
  readonly client_data: ClientDataSpec;
  /** C, the type of the round's broadcast bundle. */
  readonly broadcast_type: TffType;
  /** `<U, V1, V2, V3>`, the type of the bundle a client uploads. */
  readonly upload_type: TffType;
}

/** A task the server assigned at check-in. */
export interface Assignment {
  readonly plan_id: string;
  readonly task_id: string;
  readonly round: number;
  readonly attempt: number;
  /**
   * Absolute URLs (OpenAPI `format: uri`), used as given: on the server's `PUBLIC_URL` when it sets one,
   * else on the scheme and host this client's check-in went to.
   */
  readonly client_plan_url: string;
  readonly broadcast_url: string;
  readonly upload_url: string;
  /** The task token, the upload's Bearer credential (single use). */
  readonly token: string;
  /** The round's reporting deadline, unix ms: an upload after it is refused. */
  readonly deadline: number;
  /** Present when the round masks its secure sums (SecAgg): where the task's exchange runs. */
  readonly secure_aggregation?: { readonly protocol: 'secagg+' | 'secagg'; readonly url: string };
}

/** When to check in again, in seconds from now; the client waits a uniformly random time inside it. */
export interface RetryWindow {
  readonly min_seconds: number;
  readonly max_seconds: number;
}

/**
 * What a check-in answers: a task of a round, a retry window, or a session of a stateful program whose
 * cohort the device joined (docs/stateful.md, "The session protocol").
 */
export type CheckinAnswer =
  { readonly assignment: Assignment } | { readonly retry: RetryWindow } | { readonly session: SessionGrant };

/**
 * How a device's session of a stateful program ended. `completed`: the server said the program finished.
 * `failed`: the server said the session or the program failed, or the device answered a request with an
 * error (the server fails the session on it), or a request of the session's failed for good. `left`: the
 * device left (aborted, `leave()`, a client program it cannot read) or the server said it had left.
 */
export interface SessionOutcome {
  readonly status: 'completed' | 'failed' | 'left';
  /** Who ended the session: the server (its poll answer's `end`) or the device. */
  readonly endedBy: 'server' | 'device';
  /** The grant's `program_id` and `session_id`. */
  readonly programId: string;
  readonly sessionId: string;
  /** Requests the device answered (failed ones included). */
  readonly requests: number;
  /** Bundles it uploaded for `contribute` requests. */
  readonly contributions: number;
  /** Why it failed or left, when known: the server's code, the failed answer's, or the client's own. */
  readonly code?: ClientErrorCode;
  readonly reason?: string;
}

/** Why a client gave up an assignment without uploading. */
export type AbandonReason =
  /** The deadline had passed when the downloads were done: running `work` would be wasted. */
  | 'deadline-before-work'
  /** The deadline passed before the upload could be (or finish being) sent. */
  | 'deadline-before-upload'
  /** The example store holds no examples of the plan's collection. */
  | 'no-examples'
  /** This device already uploaded to this round of the plan (in an earlier attempt). */
  | 'already-served'
  /**
   * The round's secure aggregation went on without this task: it missed a step's deadline, the server
   * dropped it from the cohort, or too few of its neighbours were left to protect its input.
   */
  | 'secagg-dropped';

/** What one check-in (and the task it may have brought) came to. */
export type RunOutcome =
  | {
      readonly kind: 'completed';
      readonly assignment: Assignment;
      /** Examples `work` ran on. */
      readonly examples: number;
      /** Bytes sent (after gzip when enabled). */
      readonly uploadBytes: number;
    }
  | { readonly kind: 'retry'; readonly window: RetryWindow; readonly waitMs: number }
  /** The check-in gave a session of a stateful program, which ran to its end. */
  | { readonly kind: 'session'; readonly session: SessionOutcome }
  | { readonly kind: 'dropped'; readonly assignment: Assignment }
  | { readonly kind: 'late'; readonly assignment: Assignment }
  | { readonly kind: 'abandoned'; readonly assignment: Assignment; readonly reason: AbandonReason };
