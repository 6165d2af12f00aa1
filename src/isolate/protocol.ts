/**
 * The messages between an `IsolatePool` and one isolate (`isolate-entry.ts`): structured-clone data only.
 */
import type { ErrorCode, ErrorDetail } from '../errors';
import type { FinalizeTask, FoldTask, ProgramCallTask } from './contract';

/** What an isolate is started with (`workerData`). */
export interface IsolateData {
  readonly limits: import('../compute/limits').Limits;
  /** Largest WebAssembly memory, in bytes, before growth is refused (and the isolate retired). */
  readonly maxWasmBytes: number;
  /** Test-only fault injection by plan name (`ISOLATE_TEST_FAULTS`). */
  readonly testFaults: boolean;
  /** With `testFaults`: the pool's flags of `-once` faults that fired (shared by its isolates). */
  readonly onceFaults?: SharedArrayBuffer;
}

/**
 * A task for an isolate. `doc` names the document it runs: the program for `call`, else the plan
 * ({@link documentKind}); `doc.json` is sent only when the isolate said it does not keep the document.
 */
export type TaskRequest = {
  readonly id: number;
  readonly doc: { readonly id: string; readonly json?: string };
} & TaskPayload;

/** What a task asks, without its document. */
export type TaskPayload =
  | { readonly op: 'initialize' }
  | { readonly op: 'materials'; readonly state: Uint8Array; readonly round: number }
  | { readonly op: 'fold'; readonly task: FoldTask }
  | { readonly op: 'finalize'; readonly task: FinalizeTask }
  | { readonly op: 'call'; readonly task: ProgramCallTask };

/** The document of the task the isolate parked when it answered `need-plan`: run it now. */
export interface ResumeRequest {
  readonly id: number;
  readonly op: 'resume';
  readonly json: string;
}

/** How many TensorFlow.js tensors the isolate holds (between tasks: a leak check of tests). */
export interface TensorsRequest {
  readonly id: number;
  readonly op: 'tensors';
}

/** What the host sends an isolate. */
export type HostMessage = TaskRequest | ResumeRequest | TensorsRequest;

/** The task names. */
export type TaskOp = TaskRequest['op'];

/** Which kind of document a task runs: plans and programs are kept apart, so their ids may coincide. */
export type DocumentKind = 'plan' | 'program';

/** The kind of document a task runs: a stateful program for `call`, a plan for the others. */
export function documentKind(op: TaskOp): DocumentKind {
  return op === 'call' ? 'program' : 'plan';
}

/**
 * The key a document is known by: in the isolate's `LocalEvaluator`, which keeps it checked, and in the
 * host's record of what it sent the isolate.
 */
export function documentKey(kind: DocumentKind, id: string): string {
  return `${kind} ${id}`;
}

/** An isolate's answer to one task. */
export type TaskReply =
  | { readonly id: number; readonly kind: 'ok'; readonly value: unknown }
  /** The task failed with an `AppError` (a plan error): the isolate stays usable. */
  | {
      readonly id: number;
      readonly kind: 'error';
      readonly code: ErrorCode;
      readonly message: string;
      readonly details: readonly ErrorDetail[];
    }
  /** The isolate does not keep this document: it parked the task; send the document (`ResumeRequest`). */
  | { readonly id: number; readonly kind: 'need-plan' }
  /** The backend is broken (aborted, out of memory, corrupted): the host retires the isolate. */
  | { readonly id: number; readonly kind: 'fault'; readonly message: string };

/** An isolate's first message. */
export type StartReply =
  | { readonly kind: 'started'; readonly backend: string }
  | { readonly kind: 'start-failed'; readonly message: string };
